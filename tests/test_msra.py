"""MSRA reader: boxed float depth .bin files, joint.txt (z stored negative), leave-one-subject-out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossingnets.camera import CAMERAS, xyz_to_uvd
from crossingnets.data.convert import convert_frames
from crossingnets.data.msra import MsraReader, open_reader, read_depth_bin, read_joint_file
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.data.raw import BadFrameError
from crossingnets.data.store import load_arrays
from crossingnets.hand.conventions import MSRA

CAM = CAMERAS["msra"]
CROP = CropConfig(cube_mm=250.0, crop_px=16)
BOX = (100, 60, 180, 150)  # left, top, right, bottom


def write_bin(path: Path, box_mm: np.ndarray, box: tuple[int, int, int, int] = BOX, size=(320, 240)) -> None:
    header = np.array([*size, *box], dtype="<u4")
    path.write_bytes(header.tobytes() + box_mm.astype("<f4").tobytes())


def write_joint_txt(path: Path, xyz_msra: np.ndarray, count: int | None = None) -> None:
    """The shipped layout: the frame count, then 63 floats a line (y up, z negative)."""
    lines = [str(len(xyz_msra) if count is None else count)]
    lines += [" ".join(f"{x:.6f}" for x in frame.ravel()) for frame in xyz_msra]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def msra_root(tmp_path, rng) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """P0 (gestures 1 and IP, 2 frames each), P1 (gesture 1, 1 frame), P2..P7 empty, no P8.

    Returns (root, {frame name: joint.txt xyz (21, 3)}, {frame name: box depth mm}).
    """
    labels, boxes = {}, {}
    h, w = BOX[3] - BOX[1], BOX[2] - BOX[0]
    for subject, gesture, n in (("P0", "1", 2), ("P0", "IP", 2), ("P1", "1", 1)):
        folder = tmp_path / subject / gesture
        folder.mkdir(parents=True)
        # Joints around the box centre in the camera frame, then to MSRA's axes (y up, z < 0).
        xyz = rng.uniform([-30, -10, 330], [30, 50, 380], size=(n, 21, 3)) * [1, -1, -1]
        xyz = np.round(xyz, 6)
        write_joint_txt(folder / "joint.txt", xyz)
        for i in range(n):
            box_mm = (340 + np.add.outer(np.arange(h), np.arange(w)) % 40 + i).astype(np.float32)
            box_mm[:5] = 0  # missing pixels inside the box
            write_bin(folder / f"{i:06d}_depth.bin", box_mm)
            labels[f"{subject}/{gesture}/{i:06d}_depth.bin"] = xyz[i]
            boxes[f"{subject}/{gesture}/{i:06d}_depth.bin"] = box_mm
    for s in range(2, 8):
        (tmp_path / f"P{s}").mkdir()
    return tmp_path, labels, boxes


def test_read_depth_bin_places_the_box(tmp_path):
    box_mm = np.arange(80 * 90, dtype=np.float32).reshape(90, 80)
    write_bin(tmp_path / "a.bin", box_mm)
    depth = read_depth_bin(tmp_path / "a.bin", CAM)
    assert depth.shape == (240, 320) and depth.dtype == np.float32
    np.testing.assert_array_equal(depth[60:150, 100:180], box_mm)
    assert depth.sum() == box_mm.sum()


@pytest.mark.parametrize(
    ("box", "size", "cut", "match"),
    [
        (BOX, (320, 240), 4, "truncated: .* bytes, expected"),
        (BOX, (320, 240), 20000000, "shorter than its header"),
        ((100, 60, 330, 150), (320, 240), 0, "outside the 320x240 frame"),
        ((100, 60, 100, 150), (320, 240), 0, "empty or outside"),
        (BOX, (640, 480), 0, "is 640x480, expected 320x240"),
    ],
)
def test_bad_bin_files_name_the_file(tmp_path, box, size, cut, match):
    path = tmp_path / "000007_depth.bin"
    write_bin(path, np.ones((BOX[3] - BOX[1], BOX[2] - BOX[0])), box, size)
    path.write_bytes(path.read_bytes()[: max(path.stat().st_size - cut, 0)])
    with pytest.raises(BadFrameError, match=f"000007_depth.bin.*{match}"):
        read_depth_bin(path, CAM)


def test_leave_one_subject_out_and_exact_conversion(msra_root, tmp_path):
    root, labels, boxes = msra_root
    test, train = MsraReader(root, "test", "P0"), MsraReader(root, "train", "P8")
    assert [test.frame_name(i) for i in range(len(test))] == ["P0/1/000000_depth.bin", "P0/1/000001_depth.bin",
                                                             "P0/IP/000000_depth.bin", "P0/IP/000001_depth.bin"]  # fmt: skip
    assert [train.frame_name(i) for i in range(len(train))] == [
        *map(test.frame_name, range(4)),
        "P1/1/000000_depth.bin",
    ]
    report = convert_frames(test, tmp_path / "msra.h5", CROP, {})
    arrays = load_arrays(report.path)
    for i in range(len(test)):
        name = test.frame_name(i)
        xyz = labels[name] * [1, -1, -1]  # MSRA's y up, z negative -> our y down, z forward
        np.testing.assert_array_equal(arrays["joints_xyz"][i], xyz.astype(np.float32))
        np.testing.assert_array_equal(arrays["joints_uvd"][i], xyz_to_uvd(xyz, CAM).astype(np.float32))
        depth = np.zeros((240, 320), np.float32)
        depth[BOX[1] : BOX[3], BOX[0] : BOX[2]] = boxes[name]
        np.testing.assert_array_equal(arrays["depth"][i, 0], preprocess(depth, CAM, CROP).depth)


def test_joint_file_errors(msra_root):
    root, labels, _ = msra_root
    joint_txt = root / "P1" / "1" / "joint.txt"
    xyz = labels["P1/1/000000_depth.bin"][None]
    write_joint_txt(joint_txt, xyz, count=500)
    with pytest.raises(ValueError, match="P1/1/joint.txt announces 500 frames but holds 1 label lines"):
        read_joint_file(joint_txt)
    joint_txt.write_text("1\r\n" + " ".join(["1.0"] * 60) + "\r\n")
    frames = read_joint_file(joint_txt)
    assert frames == [f"{joint_txt} line 2: 60 values, expected 63 (3 x 21 joints)"]
    with pytest.raises(BadFrameError, match="60 values, expected 63"):
        MsraReader(root, "test", "P1").load(0)
    assert MSRA.num_joints == 21


def test_options(msra_root):
    root, _, _ = msra_root
    with pytest.raises(ValueError, match="leave-one-subject-out: give --subject"):
        open_reader(root, "test", camera=None, subject=None)
    with pytest.raises(ValueError, match="subject must be one of"):
        open_reader(root, "test", camera=None, subject="P9")
    with pytest.raises(FileNotFoundError, match="P8 not found"):
        MsraReader(root, "test", "P8")
