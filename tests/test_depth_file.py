"""Reading uploaded depth frames: every accepted format round-trips, every bad input says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossingnets.camera import CAMERAS
from crossingnets.data import msra, nyu
from crossingnets.data.depth_file import DepthImageError, UploadLimits, camera_for, load_depth, parse_center

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"


@pytest.fixture
def depth_mm(rng) -> np.ndarray:
    """A 480x640 frame with a 'hand' blob at 600-700 mm, the rest missing."""
    depth = np.zeros((480, 640), np.float32)
    depth[200:280, 300:360] = rng.integers(600, 700, (80, 60))
    return depth


def test_16bit_png_round_trip(tmp_path, depth_mm):
    path = tmp_path / "d.png"
    Image.fromarray(depth_mm.astype(np.uint16)).save(path)
    np.testing.assert_array_equal(load_depth(path), depth_mm)


def test_nyu_rgb_png_round_trip(tmp_path, depth_mm):
    path = tmp_path / "nyu.png"
    Image.fromarray(nyu.encode_depth(depth_mm)).save(path)
    np.testing.assert_array_equal(load_depth(path), depth_mm)


def test_msra_bin_round_trip(tmp_path):
    depth = np.zeros((240, 320), np.float32)
    depth[100:140, 150:190] = 412.5
    path = tmp_path / "000001_depth.bin"
    path.write_bytes(msra.encode_depth_bin(depth))
    np.testing.assert_array_equal(load_depth(path), depth)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int32])
@pytest.mark.parametrize("trailing_axis", [False, True])
def test_npy_round_trip(tmp_path, depth_mm, dtype, trailing_axis):
    path = tmp_path / "d.npy"
    np.save(path, depth_mm.astype(dtype)[..., None] if trailing_axis else depth_mm.astype(dtype))
    depth = load_depth(path)
    assert depth.dtype == np.float32
    np.testing.assert_array_equal(depth, depth_mm)


def test_shipped_examples_load():
    paths = sorted(p for p in EXAMPLES.iterdir() if p.suffix != ".json")  # .json: the labels beside them
    assert {p.suffix for p in paths} == {".png", ".bin"} and len(paths) >= 4
    assert sum(p.stat().st_size for p in paths) < 400_000  # the examples stay small
    for path in paths:
        depth = load_depth(path)
        assert depth.shape in {(480, 640), (240, 320)} and depth.max() > 0


def _save(path: Path, writer) -> Path:
    writer(path)
    return path


BAD_INPUTS = {
    "rgb_photo": (
        "photo.png",
        lambda p: Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)).save(p),
        "RGB photo",
    ),
    "8bit": ("gray.png", lambda p: Image.fromarray(np.full((60, 80), 9, np.uint8)).save(p), "8-bit"),
    "empty_file": ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
    "empty_array": ("none.npy", lambda p: np.save(p, np.zeros((0, 0), np.float32)), "is empty"),
    "all_zero": (
        "zeros.png",
        lambda p: Image.fromarray(np.zeros((60, 80), np.uint16)).save(p),
        "every pixel is 0",
    ),
    "huge_image": ("huge.png", lambda p: Image.new("1", (10_000, 10_000)).save(p), "10000x10000 px"),
    "huge_file": ("big.npy", lambda p: p.open("wb").truncate(50 * 2**20), "50.0 MB"),
    "corrupt": (
        "corrupt.png",
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
        "damaged PNG",
    ),
    "nan": ("nan.npy", lambda p: np.save(p, np.full((60, 80), np.nan, np.float32)), "NaN"),
    "negative": ("neg.npy", lambda p: np.save(p, np.full((60, 80), -5.0)), "negative"),
    "3d_array": ("cube.npy", lambda p: np.save(p, np.ones((4, 60, 80))), "shape (4, 60, 80)"),
    "strings": ("text.npy", lambda p: np.save(p, np.array([["a", "b"]])), "not numbers"),
    "bad_bin": ("x_depth.bin", lambda p: p.write_bytes(b"\x01\x02\x03"), "truncated"),
    "rgba": ("rgba.png", lambda p: Image.new("RGBA", (8, 8)).save(p), "RGBA image"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_problem(tmp_path, case):
    name, writer, expected = BAD_INPUTS[case]
    path = _save(tmp_path / name, writer)
    with pytest.raises(DepthImageError) as err:
        load_depth(path)
    message = str(err.value)
    assert expected in message and name in message
    assert str(tmp_path) not in message  # the server's temporary folder is not shown to the user


def test_missing_file(tmp_path):
    with pytest.raises(DepthImageError, match="not found"):
        load_depth(tmp_path / "nope.png")


def test_limits_are_configurable(tmp_path, depth_mm):
    path = tmp_path / "d.png"
    Image.fromarray(depth_mm.astype(np.uint16)).save(path)
    with pytest.raises(DepthImageError, match="limit of 100 px"):
        load_depth(path, UploadLimits(max_side_px=100))


def test_camera_presets_and_custom():
    assert camera_for("nyu", (480, 640)) == CAMERAS["nyu"]
    cam = camera_for("custom", (100, 200), (300.0, 310.0, 99.5, 49.5))
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.width_px, cam.height_px) == (300, 310, 99.5, 49.5, 200, 100)
    with pytest.raises(ValueError, match="fx and fy must be > 0"):
        camera_for("custom", (100, 200), (0.0, 310.0, 99.5, 49.5))
    with pytest.raises(ValueError, match="fx and fy must be > 0"):
        camera_for("custom", (100, 200), (-5.0, 310.0, 99.5, 49.5))
    with pytest.raises(ValueError, match="ICVL camera is 320x240"):
        camera_for("icvl", (480, 640))
    with pytest.raises(ValueError, match="unknown camera"):
        camera_for("kinect9", (480, 640))


def test_parse_center():
    depth = np.zeros((48, 64), np.float32)
    depth[10:20, 30:40] = 500
    assert parse_center(None, depth) is None and parse_center((0, 0, 0), depth) is None
    np.testing.assert_allclose(parse_center((35, 15, 0), depth), [35, 15, 500])  # depth looked up
    np.testing.assert_allclose(parse_center((35, 15, 620), depth), [35, 15, 620])
    with pytest.raises(ValueError, match="inside the 64x48 frame"):
        parse_center((70, 15, 0), depth)
    with pytest.raises(ValueError, match="no depth within"):
        parse_center((2, 40, 0), depth)
