"""NYU reader: joint_data.mat (MATLAB v5 and v7.3), RGB-encoded depth PNGs, the real test frame."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from crossingnets.camera import CAMERAS, uvd_to_xyz
from crossingnets.data.convert import convert_frames
from crossingnets.data.nyu import NyuReader, decode_depth, open_reader, read_joint_uvd
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.data.raw import BadFrameError, read_image_array
from crossingnets.data.store import load_arrays, read_info
from crossingnets.files import iter_label_lines, parse_uvd_line
from crossingnets.hand.conventions import NYU

NUM_FRAMES, NUM_CAMERAS = 3, 3
# The 14 of NYU's 36 joints that the community evaluates, written out from the format's
# documentation (shared/data/README.md, "Joint orders"; DeepPrior's and Crossing Nets' loaders),
# not taken from the reader: pinky tip, pinky root, ring tip, ring root, middle tip, middle root,
# index tip, index root, thumb tip, thumb root 2, thumb root 1, wrist 2, wrist 1, palm.
NYU_EVALUATED_JOINTS = [0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32]
CROP = CropConfig(cube_mm=300.0, crop_px=16)


def write_nyu_png(path: Path, depth_mm: np.ndarray) -> None:
    """NYU's encoding: depth mm = G * 256 + B; R holds junk the decoder must ignore."""
    d = depth_mm.astype(np.uint16)
    rgb = np.stack([np.full_like(d, 77), d >> 8, d & 0xFF], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(path)


def write_joint_data(path: Path, joint_uvd: np.ndarray, version: str) -> None:
    """joint_data.mat with joint_uvd / joint_xyz [camera, frame, 36, 3], as MATLAB v5 or v7.3."""
    variables = {"joint_uvd": joint_uvd, "joint_xyz": joint_uvd * 0.5}
    if version == "v5":
        scipy.io.savemat(path, variables)
        return
    # v7.3 is HDF5 behind a 512-byte MATLAB header; MATLAB is column-major, so h5py sees the
    # axes reversed.
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            f.create_dataset(name, data=value.T)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .".ljust(116))


@pytest.fixture(params=["v5", "v7.3"])
def nyu_root(request, tmp_path, rng) -> tuple[Path, np.ndarray, np.ndarray]:
    """ROOT/test with 3 frames of 3 cameras (PNGs of 2): returns (root, joint_uvd (C, N, 36, 3), depth (C, N, H, W))."""
    cam = CAMERAS["nyu"]
    joint_uvd = rng.uniform([200, 150, 650], [440, 330, 850], size=(NUM_CAMERAS, NUM_FRAMES, 36, 3))
    # Smooth ramps with a missing band: distinct per frame, and quick to write as PNG.
    v, u = np.mgrid[: cam.height_px, : cam.width_px]
    ramp = 650 + (u + 2 * v) % 200
    depth = np.stack([[ramp + 7 * c + i for i in range(NUM_FRAMES)] for c in range(NUM_CAMERAS)])
    depth[..., :40, :] = 0
    folder = tmp_path / "test"
    folder.mkdir()
    write_joint_data(folder / "joint_data.mat", joint_uvd, request.param)
    for c in range(2):  # PNGs of cameras 1 and 2; camera 3 has labels only
        for i in range(NUM_FRAMES):
            write_nyu_png(folder / f"depth_{c + 1}_{i + 1:07d}.png", depth[c, i])
    return tmp_path, joint_uvd, depth


def test_reads_joint_uvd_of_one_camera(nyu_root):
    root, joint_uvd, _ = nyu_root
    for camera in (1, 3):
        np.testing.assert_array_equal(
            read_joint_uvd(root / "test" / "joint_data.mat", camera), joint_uvd[camera - 1]
        )
    with pytest.raises(ValueError, match="holds cameras 1..3; camera 4 requested"):
        read_joint_uvd(root / "test" / "joint_data.mat", 4)


@pytest.mark.parametrize("camera", [1, 2])
def test_convert_is_exact(nyu_root, tmp_path, camera):
    root, joint_uvd, depth = nyu_root
    reader = NyuReader(root, "test", camera)
    assert len(reader) == NUM_FRAMES and reader.frame_name(0) == f"test/depth_{camera}_0000001.png"
    report = convert_frames(reader, tmp_path / "nyu.h5", CROP, {"source": "nyu"})
    arrays, info = load_arrays(report.path), read_info(report.path)
    cam = CAMERAS["nyu"]
    labels = joint_uvd[camera - 1][:, NYU_EVALUATED_JOINTS]
    assert info.convention is NYU and info.num_frames == NUM_FRAMES and info.camera == cam
    np.testing.assert_array_equal(arrays["joints_uvd"], labels.astype(np.float32))
    np.testing.assert_array_equal(arrays["joints_xyz"], uvd_to_xyz(labels, cam).astype(np.float32))
    for i in range(NUM_FRAMES):
        expected = preprocess(depth[camera - 1, i].astype(np.float32), cam, CROP)
        np.testing.assert_array_equal(arrays["depth"][i, 0], expected.depth)
        np.testing.assert_array_equal(arrays["com_uvd"][i], expected.com_uvd.astype(np.float32))


def test_decode_depth_is_g_times_256_plus_b(tmp_path):
    depth = np.array([[0, 1, 255, 256], [731, 1234, 2001, 65535]], dtype=np.uint16)
    write_nyu_png(tmp_path / "d.png", depth)
    decoded = decode_depth(read_image_array(tmp_path / "d.png"), tmp_path / "d.png")
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, depth)


def test_16_bit_png_is_refused_with_its_name(nyu_root, tmp_path):
    root, _, _ = nyu_root
    bad = root / "test" / "depth_1_0000002.png"
    Image.fromarray(np.full((480, 640), 700, dtype=np.uint16)).save(bad)
    with pytest.raises(BadFrameError, match="depth_1_0000002.png is uint16.*expected NYU RGB-encoded"):
        NyuReader(root, "test").load(1)


def test_missing_frame_stops_or_is_skipped(nyu_root, tmp_path):
    root, _, _ = nyu_root
    (root / "test" / "depth_1_0000002.png").unlink()
    with pytest.raises(BadFrameError, match="depth_1_0000002.png not found"):
        convert_frames(NyuReader(root, "test"), tmp_path / "a.h5", CROP, {})
    assert not (tmp_path / "a.h5").exists()
    report = convert_frames(NyuReader(root, "test"), tmp_path / "b.h5", CROP, {}, skip_bad=True)
    assert report.num_frames == 2 and [name for name, _ in report.skipped] == ["test/depth_1_0000002.png"]


def test_bad_labels_name_the_file(tmp_path):
    (tmp_path / "test").mkdir()
    mat = tmp_path / "test" / "joint_data.mat"
    scipy.io.savemat(mat, {"joint_uvd": np.zeros((1, 2, 14, 3))})
    with pytest.raises(ValueError, match=r"joint_data.mat: joint_uvd has shape \(1, 2, 14, 3\)"):
        NyuReader(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="train/joint_data.mat not found"):
        NyuReader(tmp_path, "train")
    with pytest.raises(ValueError, match="--subject: not an option of NYU"):
        open_reader(tmp_path, "test", camera=None, subject="P0")


def test_real_frame_agrees_with_its_labels(shared_data):
    """NYU test frame 1, camera 1: the decoded depth at the labelled joints is within 60 mm of d."""
    path = shared_data / "depth_samples" / "nyu" / "depth_1_0000001.png"
    depth = decode_depth(read_image_array(path), path)
    assert depth.shape == (480, 640)
    _, first_line = next(iter_label_lines(shared_data / "nyu" / "nyu_test_groundtruth_label.txt"))
    _, labels = parse_uvd_line(first_line, NYU.num_joints, "line 1")
    u, v = np.rint(labels[:, 0]).astype(int), np.rint(labels[:, 1]).astype(int)
    np.testing.assert_array_less(np.abs(depth[v, u] - labels[:, 2]), 60.0)


def test_a_header_claiming_more_values_than_the_file_holds_is_refused_unread(tmp_path):
    """Found by fuzzing: dimensions grown in a v5 header had scipy allocate what they claim."""
    path = tmp_path / "joint_data.mat"
    write_joint_data(path, np.zeros((1, 2, 36, 3)), "v5")
    raw = bytearray(path.read_bytes())
    assert np.frombuffer(raw[160:176], "<i4").tolist() == [1, 2, 36, 3]  # joint_uvd's dimensions
    raw[164:168] = np.array([100_000_000], "<i4").tobytes()  # 2 frames -> 10^8: 86 GB of doubles
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="claims dimensions \\[1, 100000000, 36, 3\\]"):
        read_joint_uvd(path)


def test_a_png_chunk_longer_than_the_file_is_refused_before_decoding(tmp_path):
    """Found by fuzzing: PIL reads what a chunk's length claims (here 64 MB) in one call."""
    path = tmp_path / "depth.png"
    Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(path)
    raw = bytearray(path.read_bytes())
    idat = raw.index(b"IDAT") - 4
    raw[idat : idat + 4] = (64 << 20).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    with pytest.raises(BadFrameError, match="damaged PNG: its 'IDAT' chunk claims 67,108,864 bytes"):
        read_image_array(path, (640, 480))
