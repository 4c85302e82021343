"""The convert loop: batching, centres, bad frames, atomic output; the centre files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from crossingnets.camera import CAMERAS, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.convert import convert_frames, open_reader, read_centers, skipped_path
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.data.raw import BadFrameError, RawFrame, labelled_frame
from crossingnets.data.store import load_arrays, read_info
from crossingnets.hand.conventions import ICVL

CAM = CAMERAS["icvl"]
CROP = CropConfig(cube_mm=250.0, crop_px=8)


class FakeReader:
    """In-memory frames with the FrameReader interface; `bad` frames raise, `empty` hold no depth."""

    convention = ICVL
    camera = CAM

    def __init__(self, num_frames: int, rng: np.random.Generator, bad=(), empty=()) -> None:
        v, u = np.mgrid[: CAM.height_px, : CAM.width_px]
        self.depth = [(400 + (u + 3 * v + i) % 100).astype(np.float32) for i in range(num_frames)]
        for i in empty:
            self.depth[i][:] = 0
        self.uvd = rng.uniform([120, 90, 380], [200, 150, 460], size=(num_frames, 16, 3))
        self.bad = set(bad)
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return len(self.depth)

    def frame_name(self, index: int) -> str:
        return f"frame_{index}.png"

    def load(self, index: int) -> RawFrame:
        self.loaded.append(index)
        if index in self.bad:
            raise BadFrameError(f"{self.frame_name(index)} is broken")
        return labelled_frame(self.frame_name(index), self.depth[index], CAM, joints_uvd=self.uvd[index])


def test_frames_in_order_across_batches_and_limit(tmp_path, rng):
    reader = FakeReader(7, rng)
    report = convert_frames(reader, tmp_path / "a.h5", CROP, {"source": "fake"}, limit=5, batch_frames=2)
    arrays, info = load_arrays(report.path), read_info(report.path)
    assert report.num_frames == 5 and info.attrs["limit"] == 5 and info.attrs["center"] == "detect"
    assert reader.loaded == [0, 1, 2, 3, 4]  # frames are read one at a time, never beyond the limit
    np.testing.assert_array_equal(arrays["joints_uvd"], reader.uvd[:5].astype(np.float32))
    for i in range(5):
        np.testing.assert_array_equal(arrays["depth"][i, 0], preprocess(reader.depth[i], CAM, CROP).depth)


def test_labels_centre_is_the_projected_mean_joint(tmp_path, rng):
    reader = FakeReader(2, rng)
    arrays = load_arrays(convert_frames(reader, tmp_path / "a.h5", CROP, {}, center="labels").path)
    expected = xyz_to_uvd(uvd_to_xyz(reader.uvd, CAM).mean(axis=1), CAM)
    np.testing.assert_allclose(arrays["com_uvd"], expected, rtol=1e-6)


@pytest.mark.parametrize("kind", ["v5.mat", "v7.3.mat", "txt"])
def test_centre_files(tmp_path, rng, kind):
    centers = np.array([[160.0, 120.0, 420.0], [150.0, 110.0, 430.0]])
    path = tmp_path / f"centers.{kind.split('.')[-1]}"
    if kind == "v5.mat":
        scipy.io.savemat(path, {"center_uvd": centers.astype(np.float32)})
    elif kind == "v7.3.mat":
        with h5py.File(path, "w", userblock_size=512) as f:
            f.create_dataset("center_uvd", data=centers.T)  # MATLAB is column-major
    else:
        np.savetxt(path, centers)
    np.testing.assert_allclose(read_centers(path), centers, rtol=1e-6)
    arrays = load_arrays(
        convert_frames(FakeReader(2, rng), tmp_path / "a.h5", CROP, {}, center=str(path)).path
    )
    np.testing.assert_allclose(arrays["com_uvd"], centers, rtol=1e-6)
    with pytest.raises(ValueError, match="has 2 rows but the split has 3 frames"):
        convert_frames(FakeReader(3, rng), tmp_path / "b.h5", CROP, {}, center=str(path))


def test_crossing_nets_nyu_centres_are_readable(shared_data):
    centers = read_centers(shared_data / "nyu" / "crossingnet_centers" / "center_uvd_test.mat")
    assert centers.shape == (8252, 3)
    assert 600 < np.median(centers[:, 2]) < 1000  # mm, the NYU hand's distance


def test_bad_frame_stops_without_leaving_a_file(tmp_path, rng):
    out = tmp_path / "a.h5"
    with pytest.raises(BadFrameError, match=r"frame 3 \(frame_3.png\): frame_3.png is broken"):
        convert_frames(FakeReader(5, rng, bad={3}), out, CROP, {}, batch_frames=2)
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary file


def test_skip_bad_lists_the_skipped_frames(tmp_path, rng):
    reader = FakeReader(5, rng, bad={1}, empty={3})
    report = convert_frames(reader, tmp_path / "a.h5", CROP, {}, skip_bad=True)
    assert report.num_frames == 3 and [name for name, _ in report.skipped] == ["frame_1.png", "frame_3.png"]
    np.testing.assert_array_equal(
        load_arrays(report.path)["joints_uvd"], reader.uvd[[0, 2, 4]].astype(np.float32)
    )
    lines = skipped_path(report.path).read_text().splitlines()
    assert lines[0] == "frame_1.png\tframe_1.png is broken" and lines[1].endswith("no hand in range")
    with pytest.raises(ValueError, match="no frame of the 1 read could be converted"):
        convert_frames(FakeReader(1, rng, bad={0}), tmp_path / "b.h5", CROP, {}, skip_bad=True)
    assert not (tmp_path / "b.h5").exists()


def test_existing_output_is_kept_unless_overwrite(tmp_path, rng):
    out = tmp_path / "a.h5"
    convert_frames(FakeReader(1, rng), out, CROP, {})
    with pytest.raises(FileExistsError):
        convert_frames(FakeReader(2, rng), out, CROP, {})
    assert read_info(out).num_frames == 1
    convert_frames(FakeReader(2, rng), out, CROP, {}, overwrite=True)
    assert read_info(out).num_frames == 2


def test_labelled_frame_checks_size_and_depth_sign(rng):
    with pytest.raises(BadFrameError, match="x.png: depth frame is 10x5, expected 320x240"):
        labelled_frame("x.png", np.zeros((5, 10)), CAM, joints_uvd=np.ones((16, 3)))
    with pytest.raises(BadFrameError, match="z <= 0"):
        labelled_frame("x.png", np.zeros((240, 320)), CAM, joints_xyz_mm=-np.ones((16, 3)))


def test_unknown_dataset(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown dataset 'hands2017'"):
        open_reader("hands2017", tmp_path, "test", camera=None, subject=None)
