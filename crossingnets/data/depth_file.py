"""Depth image files (uploads, `predict`) -> (H, W) float32 depth in mm, with size limits and clear errors.

Accepted: a 16-bit single-channel PNG of depth in mm (ICVL, most sensors), NYU's RGB-encoded PNG
(depth mm = G * 256 + B, R = 0), an MSRA `*_depth.bin`, or a 2-D `.npy` array of depth in mm.
Every failure raises `DepthImageError` (a ValueError) whose message names the file and says what
was wrong and what was expected; the dataset modules' decoders are reused for their formats.
What a frame needs beside its pixels is read here too: its camera (`camera_for`, a preset checked
against the frame's size or custom intrinsics) and a hand centre given with it (`parse_center`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError

import numpy as np
from PIL import Image, UnidentifiedImageError

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data import icvl, msra, nyu
from crossingnets.data.preprocess import check_depth
from crossingnets.data.raw import CORRUPT_FILE_ERRORS, png_chunk_problem

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I")  # PIL modes of 16-bit greyscale PNGs
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA")
EXPECTED = "expected 16-bit depth in mm (PNG), NYU RGB-encoded depth (PNG), an MSRA .bin or a 2-D .npy in mm"


class DepthImageError(ValueError):
    """An uploaded depth frame is unreadable, too large or not depth; the message says why."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 16 * 2**20  # a 640x480 float64 .npy is 2.5 MB, dataset PNGs are < 0.2 MB
    max_side_px: int = 2048  # larger than any depth sensor's frame (Azure Kinect: 1024x1024)
    max_depth_mm: float = 65_535.0  # the 16-bit range; beyond it a value cannot be mm


DEFAULT_LIMITS = UploadLimits()


def _reject(name: str, what: str) -> DepthImageError:
    return DepthImageError(f"depth image {name} {what}; {EXPECTED}")


def _check_size(name: str, height: int, width: int, limits: UploadLimits) -> None:
    if max(height, width) > limits.max_side_px:
        raise DepthImageError(
            f"depth image {name} is {width}x{height} px, larger than the limit of {limits.max_side_px} px a side"
        )


def _read_png(path: Path, name: str, limits: UploadLimits) -> np.ndarray:
    """Any PIL-readable image: 16-bit greyscale or NYU RGB, checked before its pixels are decoded."""
    if problem := png_chunk_problem(path):
        raise _reject(name, f"is a damaged PNG: {problem}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked
            with Image.open(path) as img:
                _check_size(name, img.height, img.width, limits)  # read from the header only
                mode = img.mode
                pixels = np.asarray(img)
    except DepthImageError:
        raise
    except Image.DecompressionBombError:
        raise DepthImageError(
            f"depth image {name} is larger than the limit of {limits.max_side_px} px a side"
        ) from None
    except (UnidentifiedImageError, SyntaxError, *CORRUPT_FILE_ERRORS) as err:  # PIL on a damaged file
        raise _reject(name, f"is not a readable image ({type(err).__name__})") from None
    if mode in SIXTEEN_BIT_MODES:
        if pixels.dtype != np.uint16:  # mode "I" holds int32; a depth PNG stays in 16 bits
            if pixels.min() < 0 or pixels.max() > 65535:
                raise _reject(name, "holds 32-bit integers outside 0..65535")
            pixels = pixels.astype(np.uint16)
        return icvl.decode_depth(pixels, Path(name))
    if mode == "RGB":
        if pixels[..., 0].any():  # NYU encodes depth in G and B only; a photo has red
            raise _reject(name, "is an RGB photo (its red channel is not zero)")
        return nyu.decode_depth(pixels, Path(name))
    if mode in EIGHT_BIT_MODES:
        raise _reject(name, f"is an 8-bit image (mode {mode}), too coarse for depth in mm")
    raise _reject(name, f"is a {mode} image")


NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_npy(path: Path, name: str, limits: UploadLimits) -> np.ndarray:
    """A 2-D numeric array (a trailing axis of 1 is dropped). Its header is checked before the data
    is read, since numpy allocates what the header claims: a few bytes could ask for terabytes."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in NPY_HEADERS:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            shape, _, dtype = NPY_HEADERS[version](f)
            if len(shape) == 3 and shape[-1] == 1:
                shape = shape[:2]
            if len(shape) != 2:
                raise _reject(name, f"holds an array of shape {shape}, not one (H, W) frame")
            if dtype.kind not in "iuf":
                raise _reject(name, f"holds {dtype} values, not numbers")
            _check_size(name, *shape, limits)
            f.seek(0)
            depth = np.load(f, allow_pickle=False)
    except DepthImageError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, TokenError) as err:  # numpy tokenizes the header
        raise _reject(name, f"is not a readable .npy array ({err})") from None
    return depth.reshape(shape).astype(np.float32)


def _read_bin(path: Path, name: str, limits: UploadLimits) -> np.ndarray:
    return msra.read_depth_bin(path, CAMERAS["msra"])


READERS = {".png": _read_png, ".npy": _read_npy, ".bin": _read_bin}


def load_depth(path: str | os.PathLike, limits: UploadLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Read an uploaded depth frame -> (H, W) float32 depth in mm, 0 = missing.

    The reader is chosen by the extension (.png, .npy, .bin; other image extensions go to the
    image reader, which then rejects what is not depth). The file size is checked before reading
    and the image size before decoding, so an oversized upload costs no memory.
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DepthImageError(f"depth image {name} not found") from None
    if size == 0:
        raise DepthImageError(f"depth image {name} is an empty file")
    if size > limits.max_bytes:
        raise DepthImageError(
            f"depth image {name} is {size / 2**20:.1f} MB, larger than the limit of {limits.max_bytes / 2**20:.0f} MB"
        )
    reader = READERS.get(path.suffix.lower(), _read_png)
    try:
        depth = check_depth(reader(path, name, limits), f"depth image {name}")
    except DepthImageError:
        raise
    except ValueError as err:  # the dataset decoders' BadFrameError and check_depth's errors
        message = str(err).replace(str(path), name)
        raise DepthImageError(message if name in message else f"depth image {name}: {message}") from None
    if depth.max() > limits.max_depth_mm:
        raise _reject(name, f"holds depth up to {depth.max():g}, beyond {limits.max_depth_mm:g} mm")
    if not depth.any():
        raise DepthImageError(f"depth image {name} holds no depth: every pixel is 0 (missing)")
    return depth


def typed_numbers(what: str, names: tuple[str, ...], values: tuple) -> list[float]:
    """Numbers a user typed -> finite floats, or a ValueError naming the field to fix: the app's
    number boxes send None when cleared, and a NaN or infinite intrinsic or centre has no meaning."""
    if len(values) != len(names):
        raise ValueError(f"{what} needs {len(names)} numbers ({', '.join(names)}), got {len(values)}")
    out = []
    for name, value in zip(names, values, strict=True):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{what} {name} must be a number, got {value!r}") from None
        if not np.isfinite(number):
            raise ValueError(f"{what} {name} must be finite, got {number:g}")
        out.append(number)
    return out


def camera_for(
    preset: str, depth_shape: tuple[int, int], custom: tuple[float, float, float, float] | None = None
) -> Intrinsics:
    """The camera of a frame: a dataset preset ("nyu", "icvl", "msra") or "custom" (fx, fy, cx, cy).

    A preset must match the frame's size, since its principal point and focal lengths belong to
    that sensor; a custom camera takes the frame's size. Raises ValueError with what to change.
    """
    height, width = depth_shape
    if preset == "custom":
        if custom is None:
            raise ValueError("a custom camera needs fx, fy, cx, cy")
        fx, fy, cx, cy = typed_numbers("custom camera", ("fx", "fy", "cx", "cy"), custom)
        if not (fx > 0 and fy > 0):
            raise ValueError(
                f"custom camera focal lengths fx and fy must be > 0 px, got fx={fx:g}, fy={fy:g}"
            )
        return Intrinsics(fx, fy, cx, cy, width, height)
    if preset not in CAMERAS:
        raise ValueError(f"unknown camera {preset!r}; expected one of {sorted(CAMERAS)} or 'custom'")
    cam = CAMERAS[preset]
    if (cam.width_px, cam.height_px) != (width, height):
        raise ValueError(
            f"the frame is {width}x{height} px but the {preset.upper()} camera is {cam.width_px}x{cam.height_px}; "
            "choose the matching camera or enter a custom one"
        )
    return cam


CENTER_PATCH_PX = 7  # a centre given without depth takes the median depth within this many px


def parse_center(center: tuple[float, float, float] | None, depth_mm: np.ndarray) -> np.ndarray | None:
    """A hand centre given with a frame (u px, v px, d mm) -> (3,) uvd, or None to detect it.

    None or all zero means: detect. d <= 0 takes the median valid depth within CENTER_PATCH_PX of
    (u, v) of the (H, W) frame in mm, since a user can point at the hand but rarely knows its depth.
    Raises ValueError saying what to change.
    """
    if center is None or not any(center):
        return None
    u, v, d = typed_numbers("hand centre", ("u", "v", "d"), center)
    h, w = depth_mm.shape
    if not (0 <= u < w and 0 <= v < h):
        raise ValueError(f"hand centre ({u:g}, {v:g}) must lie inside the {w}x{h} frame")
    if d <= 0:
        r = CENTER_PATCH_PX
        patch = depth_mm[max(0, int(v) - r) : int(v) + r + 1, max(0, int(u) - r) : int(u) + r + 1]
        valid = patch[patch > 0]
        if valid.size == 0:
            raise ValueError(f"no depth within {r} px of the hand centre ({u:g}, {v:g}); give its depth d")
        d = float(np.median(valid))
    return np.array([u, v, d])
