"""Fuzzing the upload readers (`crossingnets.data.depth_file`): any file, camera or hand centre gives
a valid frame or a clear error (the contract of `tests/fuzzing.py`).

Inputs: random bytes under every accepted extension; the real formats (16-bit PNG, NYU's RGB PNG,
an MSRA .bin, .npy) truncated, bit-flipped and overwritten; images of every PIL mode and format;
.bin headers and .npy headers with any fields; cameras and centres at the edges.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fuzzing import EDGE_FLOATS, clear_outcome, fuzz_settings, mutated, timeout
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data import msra, nyu
from crossingnets.data.depth_file import DEFAULT_LIMITS, camera_for, load_depth, parse_center

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
SUFFIXES = [".png", ".npy", ".bin", ".PNG", ".tif", ".jpg", ""]

pytestmark = [timeout(), pytest.mark.usefixtures("fuzz_warm")]


def _frame(height: int = 48, width: int = 64) -> np.ndarray:
    """A small depth frame in mm: a hand-sized blob at 600-700 mm, the rest missing."""
    depth = np.zeros((height, width), np.float32)
    depth[height // 4 : height // 2, width // 3 : width // 2] = 600 + np.arange(width // 2 - width // 3)
    return depth


def _png_bytes(pixels: np.ndarray, fmt: str = "PNG", palette: bool = False) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert("P") if palette else image).save(buf, format=fmt)
    return buf.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _msra_bin() -> bytes:
    depth = np.zeros((240, 320), np.float32)
    depth[100:112, 150:160] = 412.5
    return msra.encode_depth_bin(depth)


# Real-format files the mutations start from (name, bytes).
BASES = {
    "png16.png": _png_bytes(_frame().astype(np.uint16)),
    "example.png": (EXAMPLES / "synthetic_nyu_0.png").read_bytes(),
    "nyu_rgb.png": _png_bytes(nyu.encode_depth(_frame())),
    "depth.bin": _msra_bin(),
    "depth.npy": _npy_bytes(_frame()),
    "depth_u16.npy": _npy_bytes(_frame().astype(np.uint16)),
}


def check_load(fuzz_folder: Path, name: str, data: bytes) -> None:
    """The contract of `load_depth` on one file: a valid frame, or a DepthImageError naming it."""
    path = fuzz_folder / name
    path.write_bytes(data)
    depth = clear_outcome(lambda: load_depth(path), name)
    if isinstance(depth, ValueError):
        assert type(depth).__name__ == "DepthImageError", f"{type(depth).__name__}: {depth}"
        return
    assert depth.dtype == np.float32 and depth.ndim == 2
    assert max(depth.shape) <= DEFAULT_LIMITS.max_side_px
    assert np.isfinite(depth).all() and depth.min() >= 0 and depth.max() <= DEFAULT_LIMITS.max_depth_mm
    assert depth.any()


@fuzz_settings()
@given(name=st.sampled_from(sorted(BASES)), data=st.data())
def test_mutated_real_files(fuzz_folder, name, data):
    check_load(fuzz_folder, name, data.draw(mutated(BASES[name])))


@fuzz_settings()
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=4096))
def test_random_bytes(fuzz_folder, suffix, data):
    check_load(fuzz_folder, f"random{suffix}", data)


MODES = {  # PIL mode -> numpy dtype and channels of its pixels
    "1": (np.bool_, 0), "L": (np.uint8, 0), "LA": (np.uint8, 2), "P": (np.uint8, 0), "RGB": (np.uint8, 3),
    "RGBA": (np.uint8, 4), "I;16": (np.uint16, 0), "I": (np.int32, 0), "F": (np.float32, 0),
}  # fmt: skip


@pytest.mark.filterwarnings("ignore:Saving I mode images as PNG:DeprecationWarning")
@fuzz_settings()
@given(
    mode=st.sampled_from(sorted(MODES)),
    fmt=st.sampled_from(["PNG", "TIFF", "BMP", "GIF", "JPEG"]),
    suffix=st.sampled_from([".png", ".tif", ".jpg"]),
    data=st.data(),
)
def test_images_of_every_mode_and_format(fuzz_folder, mode, fmt, suffix, data):
    dtype, channels = MODES[mode]
    shape = data.draw(st.tuples(st.integers(1, 40), st.integers(1, 40)))
    pixels = data.draw(hnp.arrays(dtype, (*shape, channels) if channels else shape))
    try:
        encoded = _png_bytes(pixels, fmt, palette=mode == "P")
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # PIL cannot write this mode in this format
    check_load(fuzz_folder, f"image{suffix}", encoded)


@fuzz_settings()
@given(
    header=st.tuples(
        st.sampled_from([320, 321, 0, 2**32 - 1]), st.sampled_from([240, 239, 0, 2**31]),
        *[st.one_of(st.integers(0, 330), st.just(2**32 - 1)) for _ in range(4)],
    ),
    values=st.lists(st.floats(width=32), max_size=600),
    extra=st.integers(-8, 8),
)  # fmt: skip
def test_msra_bin_headers(fuzz_folder, header, values, extra):
    width, height, left, top, right, bottom = header
    box = max(right - left, 0) * max(bottom - top, 0)
    body = np.resize(np.asarray(values or [0.0], "<f4"), max(0, min(box, 4096) + extra))
    data = np.array(header, "<u4").tobytes() + body.tobytes()
    check_load(fuzz_folder, "000001_depth.bin", data)


DESCRS = ["<f4", "<f8", ">f4", "<f2", "<u2", "<i8", "<u8", "|b1", "<c8", "|O", "<U3", "|V4", "[('a', '<f4')]"]


@fuzz_settings()
@given(
    descr=st.sampled_from(DESCRS),
    fortran=st.booleans(),
    shape=st.lists(st.one_of(st.integers(0, 70), st.integers(0, 2**40)), max_size=4),
    body=st.binary(max_size=4096),
    version=st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]),
)
def test_npy_headers(fuzz_folder, descr, fortran, shape, body, version):
    text = f"{{'descr': {descr if descr.startswith('[') else repr(descr)}, 'fortran_order': {fortran}, 'shape': {tuple(shape)}, }}"
    text = text.ljust(118) + "\n"
    size = len(text).to_bytes(2 if version == b"\x01\x00" else 4, "little")
    check_load(fuzz_folder, "header.npy", b"\x93NUMPY" + version + size + text.encode() + body)


PRESETS = ["nyu", "icvl", "msra", "custom", "NYU", "", "kinect"]


@fuzz_settings()
@given(
    preset=st.sampled_from(PRESETS),
    shape=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    custom=st.one_of(st.none(), st.tuples(*[EDGE_FLOATS] * 4)),
)
def test_cameras_at_the_edges(preset, shape, custom):
    cam = clear_outcome(lambda: camera_for(preset, shape, custom), "camera")
    if isinstance(cam, Intrinsics):
        assert (cam.height_px, cam.width_px) == shape
        assert np.isfinite([cam.fx, cam.fy, cam.cx, cam.cy]).all() and cam.fx > 0 and cam.fy > 0


@fuzz_settings()
@given(center=st.one_of(st.none(), st.tuples(*[EDGE_FLOATS] * 3)), shape=st.sampled_from([(48, 64), (1, 1)]))
def test_hand_centres_inside_and_outside_the_frame(center, shape):
    depth = _frame(*shape) if shape != (1, 1) else np.ones(shape, np.float32)
    uvd = clear_outcome(lambda: parse_center(center, depth), ("hand centre", "depth"))
    if isinstance(uvd, np.ndarray):
        u, v, d = uvd
        assert uvd.shape == (3,) and np.isfinite(uvd).all() and d > 0
        assert 0 <= u < shape[1] and 0 <= v < shape[0]


def test_the_examples_still_load_with_their_cameras():
    """The fuzzed readers still read what they are for (a fuzz fix must not refuse good files)."""
    for path in sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".png", ".bin")):
        depth = load_depth(path)
        cam = camera_for("msra" if path.suffix == ".bin" else "nyu", depth.shape)
        assert cam == CAMERAS["msra" if path.suffix == ".bin" else "nyu"]
