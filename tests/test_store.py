import h5py
import numpy as np
import pytest

from crossingnets.camera import CAMERAS
from crossingnets.data.preprocess import CropConfig
from crossingnets.data.store import HandDepthDataset, StoreWriter, load_arrays, read_info
from crossingnets.hand.conventions import NYU

CROP = CropConfig(cube_mm=300.0, crop_px=16)


def frames(rng, n):
    return {
        "depth": rng.uniform(-1, 1, (n, 1, 16, 16)),
        "joints_xyz": rng.normal(size=(n, 14, 3)),
        "joints_uvd": rng.normal(size=(n, 14, 3)),
        "com_uvd": rng.normal(size=(n, 3)),
    }


def write(path, batches, **kw):
    with StoreWriter(path, NYU, CAMERAS["nyu"], CROP, {"source": "test", "seed": 3}, **kw) as w:
        for b in batches:
            w.append(**b)
    return path


def test_round_trip_and_schema(tmp_path, rng):
    a, b = frames(rng, 5), frames(rng, 70)
    path = write(tmp_path / "s.h5", [a, b])
    info = read_info(path)
    assert info.num_frames == 75 and info.convention is NYU and info.crop == CROP
    assert info.camera == CAMERAS["nyu"] and info.attrs["source"] == "test"
    arrays = load_arrays(path)
    for k in a:
        assert arrays[k].dtype == np.float32
        np.testing.assert_array_equal(arrays[k], np.concatenate([a[k], b[k]]).astype(np.float32))
    ds = HandDepthDataset(path)
    item = ds[7]
    assert len(ds) == 75 and item["depth"].shape == (1, 16, 16) and int(item["index"]) == 7


def test_same_content_gives_bitwise_identical_files(tmp_path):
    p1 = write(tmp_path / "a.h5", [frames(np.random.default_rng(1), 10)])
    p2 = write(tmp_path / "b.h5", [frames(np.random.default_rng(1), 10)])
    assert p1.read_bytes() == p2.read_bytes()


def test_error_inside_the_writer_leaves_nothing(tmp_path, rng):
    bad = frames(rng, 3)
    bad["joints_xyz"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write(tmp_path / "x.h5", [frames(rng, 2), bad])
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_output_unless_overwrite(tmp_path, rng):
    path = write(tmp_path / "s.h5", [frames(rng, 2)])
    with pytest.raises(FileExistsError, match="--overwrite"):
        write(path, [frames(rng, 2)])
    write(path, [frames(rng, 4)], overwrite=True)
    assert read_info(path).num_frames == 4


def test_bad_paths_and_files(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write(tmp_path / "missing" / "s.h5", [])
    (tmp_path / "t.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        read_info(tmp_path / "t.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="missing datasets"):
        read_info(tmp_path / "other.h5")


def test_wrong_shape_is_rejected(tmp_path, rng):
    bad = frames(rng, 3)
    bad["com_uvd"] = bad["com_uvd"][:2]
    with pytest.raises(ValueError, match="com_uvd has shape"):
        write(tmp_path / "s.h5", [bad])
