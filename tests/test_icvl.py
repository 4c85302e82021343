"""ICVL reader: label lines (CRLF, blank lines), 16-bit depth PNGs, the `convert` command end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossingnets import cli
from crossingnets.camera import CAMERAS, uvd_to_xyz
from crossingnets.data.convert import convert_frames
from crossingnets.data.icvl import IcvlReader, open_reader
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.data.raw import BadFrameError
from crossingnets.data.store import load_arrays, read_info
from crossingnets.hand.conventions import ICVL

CAM = CAMERAS["icvl"]
CROP = CropConfig(cube_mm=250.0, crop_px=16)


def _label_line(name: str, uvd: np.ndarray) -> str:
    return name + " " + " ".join(f"{x:.3f}" for x in uvd.ravel())


@pytest.fixture
def icvl_root(tmp_path, rng) -> tuple[Path, list[str], np.ndarray, np.ndarray]:
    """ROOT/Testing with two sequences (2 + 1 frames): (root, names, uvd (3, 16, 3), depth (3, H, W))."""
    names = ["test_seq_1/image_0000.png", "test_seq_1/image_0001.png", "test_seq_2/image_0000.png"]
    uvd = np.round(rng.uniform([100, 80, 300], [220, 160, 450], size=(3, 16, 3)), 3)
    v, u = np.mgrid[: CAM.height_px, : CAM.width_px]
    depth = np.stack([300 + (u + v + 5 * i) % 150 for i in range(3)]).astype(np.uint16)
    depth[:, :20] = 0
    testing = tmp_path / "Testing"
    for name, d in zip(names, depth, strict=True):
        (testing / "Depth" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(d).save(testing / "Depth" / name)
    lines = [_label_line(n, x) for n, x in zip(names, uvd, strict=True)]
    # The shipped files end lines with CRLF and hold blank lines.
    (testing / "test_seq_1.txt").write_bytes(("\r\n".join(lines[:2]) + "\r\n\r\n").encode())
    (testing / "test_seq_2.txt").write_bytes(("\r\n" + lines[2] + "\r\n").encode())
    return tmp_path, names, uvd, depth


def test_convert_command_is_exact(icvl_root, tmp_path):
    root, names, uvd, depth = icvl_root
    out = tmp_path / "icvl_test.h5"
    argv = ["convert", "icvl", str(root), "--split", "test", "--out", str(out), "--crop-px", "16"]
    assert cli.main(argv) == 0
    arrays, info = load_arrays(out), read_info(out)
    assert info.convention is ICVL and info.num_frames == 3 and info.attrs["split"] == "test"
    assert info.crop == CROP  # cube from the ICVL convention
    np.testing.assert_array_equal(arrays["joints_uvd"], uvd.astype(np.float32))
    np.testing.assert_array_equal(arrays["joints_xyz"], uvd_to_xyz(uvd, CAM).astype(np.float32))
    for i in range(3):
        np.testing.assert_array_equal(
            arrays["depth"][i, 0], preprocess(depth[i].astype(np.float32), CAM, CROP).depth
        )
    assert [IcvlReader(root, "test").frame_name(i) for i in range(3)] == [f"Testing/Depth/{n}" for n in names]
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        cli.main(argv)
    assert cli.main([*argv, "--overwrite", "--limit", "1"]) == 0
    assert read_info(out).num_frames == 1


def test_training_split_reads_labels_txt(icvl_root):
    root, names, uvd, _ = icvl_root
    (root / "Training").mkdir()
    (root / "Training" / "labels.txt").write_text(_label_line("2014/image_0000.png", uvd[0]) + "\n")
    reader = open_reader(root, "train", camera=None, subject=None)
    assert len(reader) == 1 and reader.frame_name(0) == "Training/Depth/2014/image_0000.png"
    with pytest.raises(BadFrameError, match="Training/Depth/2014/image_0000.png not found"):
        reader.load(0)


def test_8_bit_png_is_refused_with_its_name(icvl_root):
    root, names, _, depth = icvl_root
    Image.fromarray((depth[1] // 4).astype(np.uint8)).save(root / "Testing" / "Depth" / names[1])
    with pytest.raises(BadFrameError, match="image_0001.png is uint8.*expected a 16-bit"):
        IcvlReader(root, "test").load(1)


def test_wrong_label_count_names_file_and_line_and_can_be_skipped(icvl_root, tmp_path):
    root, names, uvd, _ = icvl_root
    seq2 = root / "Testing" / "test_seq_2.txt"
    seq2.write_text(_label_line(names[2], uvd[2]).rsplit(" ", 1)[0] + "\n")  # one value short
    reader = IcvlReader(root, "test")
    with pytest.raises(
        BadFrameError, match=r"test_seq_2.txt line 1: 47 values, expected 48 \(3 x 16 joints\)"
    ):
        reader.load(2)
    report = convert_frames(reader, tmp_path / "skip.h5", CROP, {}, skip_bad=True)
    assert report.num_frames == 2 and report.skipped[0][0] == "Testing/Depth/test_seq_2/image_0000.png"
    assert (
        (tmp_path / "skip.h5.skipped.txt").read_text().startswith("Testing/Depth/test_seq_2/image_0000.png\t")
    )


def test_missing_folder_and_foreign_options(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ICVL label file"):
        IcvlReader(tmp_path, "test")
    with pytest.raises(ValueError, match="--camera: not an option of ICVL"):
        open_reader(tmp_path, "test", camera=1, subject=None)
