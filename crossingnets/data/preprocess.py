"""Hand centre detection, metric-cube crops and their exact inverses.

One path for synthetic and real frames (DeepPrior, Oberweger et al. 2015; Crossing Nets' code):
a cube of side `cube_mm` centred on the hand centre is projected into the frame, resampled
(nearest neighbour, so depth edges are never blended) to `crop_px` x `crop_px`, and depth is
normalised to [-1, 1] by the cube's half side, missing pixels and everything behind the cube at +1.

Coordinates: full-frame uvd (pixel centres at integer u, v; d in mm); crop uvd ("crop_uvd": crop
pixels, with the same pixel-centre convention, and depth normalised like the crop); xyz in mm;
"norm" xyz = (xyz - centre_xyz) / (cube_mm / 2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit

from crossingnets.camera import Intrinsics, uvd_to_xyz

BACKGROUND = 1.0  # normalised depth of missing pixels and of everything behind the cube


class NoHandError(ValueError):
    """The depth frame holds no pixel that could belong to a hand."""


@dataclass(frozen=True)
class CropConfig:
    cube_mm: float = 250.0  # side of the metric cube (Crossing Nets' code: 250; NYU often 300)
    crop_px: int = 128  # network input side (the paper's 128 x 128)
    max_depth_mm: float = 2000.0  # farther pixels are never hand candidates
    center_iterations: int = 5  # refinements of the centre of mass (DeepPrior uses a few)

    def __post_init__(self) -> None:
        if not (self.cube_mm > 0 and self.crop_px > 0):
            raise ValueError(f"cube_mm and crop_px must be positive, got {self.cube_mm}, {self.crop_px}")


def check_depth(depth_mm: np.ndarray, name: str = "depth frame") -> np.ndarray:
    """A (H, W) float depth map in mm with 0 for missing pixels, or a clear ValueError."""
    depth = _as_frame(depth_mm, name)
    _check_values(depth, _largest_bits(depth.reshape(-1).view(np.uint32)), name)
    return depth


def _as_frame(depth_mm: np.ndarray, name: str) -> np.ndarray:
    """A C-contiguous float32 (H, W) array (values not checked), or a clear ValueError."""
    depth = np.asarray(depth_mm)
    if depth.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array in mm, got shape {depth.shape}")
    if depth.size == 0:
        raise ValueError(f"{name} is empty")
    return np.ascontiguousarray(depth, dtype=np.float32)


def _check_values(depth: np.ndarray, top_bits: int, name: str) -> None:
    """Raise on NaN, infinite or negative depth, given the scan's largest bit pattern."""
    if top_bits < _INF_BITS:
        return  # every pixel is a finite float >= +0 (sign bit clear, exponent not all ones)
    # Something is wrong, or the frame holds -0.0 (sign bit set, a valid 0): ask numpy which.
    if not np.isfinite(depth).all():
        raise ValueError(f"{name} contains NaN or infinite depth; mark missing pixels with 0")
    if (depth < 0).any():
        raise ValueError(f"{name} contains negative depth; expected mm >= 0 (0 = missing)")


def _scan_frame(depth: np.ndarray, max_depth_mm: float) -> tuple[np.ndarray, int]:
    """One pass over a float32 (h, w) frame: the nearest depth key of every row (`_NO_KEY` for a
    row without a pixel in (0, max_depth_mm)) and the largest bit pattern (for `_check_values`).

    A non-negative float32 orders like its bit pattern, so the pass runs on integers: key =
    bits - 1 (wrapping) is below `max_key` exactly for 0 < depth < max_depth_mm, and the two
    reductions of a row vectorise."""
    rows, top_bits = _row_minima(depth.view(np.uint32))
    return np.where(rows < _max_key(max_depth_mm), rows, _NO_KEY), int(top_bits)


@functools.lru_cache(maxsize=16)
def _max_key(max_depth_mm: float) -> np.uint32:
    """The key (bits - 1) of the smallest float32 >= max_depth_mm: depth < max_depth_mm exactly
    where its key is below it (and depth > 0 where the key did not wrap). Cached: numpy's error
    state switch alone took 7.5 us, twice a frame."""
    with np.errstate(over="ignore"):
        limit = np.float32(max(max_depth_mm, 0.0))
    if float(limit) < max_depth_mm:
        limit = np.nextafter(limit, np.float32(np.inf))
    return np.uint32(max(int(limit.view(np.uint32)) - 1, 0))


def half_size_px(com_uvd: np.ndarray, cam: Intrinsics, cube_mm: float) -> tuple[float, float]:
    """Half side of the projected cube in pixels (u, v) at the centre's depth."""
    d = float(com_uvd[2])
    if d <= 0:
        raise ValueError(f"hand centre depth must be > 0 mm, got {d}")
    return 0.5 * cube_mm * cam.fx / d, 0.5 * cube_mm * cam.fy / d


def detect_center(
    depth_mm: np.ndarray,
    cam: Intrinsics,
    cfg: CropConfig = CropConfig(),
    origin_px: tuple[int, int] | None = None,
) -> np.ndarray:
    """Hand centre (u, v, d) as the centre of mass of the nearest blob, refined in the cube.

    Candidates are the pixels within half a cube behind the nearest valid depth d0 (the hand is the
    object nearest the sensor; a body or wall further back must not pull the centre, and a forearm
    pointing away is cut off). Their centre of mass is then refined `cfg.center_iterations` times
    over the candidates inside the cube around the current centre (DeepPrior, Oberweger 2015).
    `origin_px`: `depth_mm` is a window of the camera's frame (see `preprocess`).
    """
    depth, origin = _frame_or_window(depth_mm, origin_px, cam)
    rows, top_bits = _scan_frame(depth, cfg.max_depth_mm)
    _check_values(depth, top_bits, _frame_name(origin_px))
    return _detect_center(depth, rows, origin, cam, cfg)


def _frame_name(origin_px: tuple[int, int] | None) -> str:
    """What the user's array is called in messages: a whole frame, or a window of one."""
    return "depth frame" if origin_px is None else "depth window"


def _frame_or_window(
    depth_mm: np.ndarray, origin_px: tuple[int, int] | None, cam: Intrinsics
) -> tuple[np.ndarray, tuple[int, int]]:
    """The checked-shape float32 array and its origin in the frame: (0, 0) for a whole frame; a
    window must lie inside the camera's frame."""
    depth = _as_frame(depth_mm, _frame_name(origin_px))
    if origin_px is None:
        return depth, (0, 0)
    u0, v0 = (int(x) for x in origin_px)
    h, w = depth.shape
    if not (0 <= u0 and 0 <= v0 and u0 + w <= cam.width_px and v0 + h <= cam.height_px):
        raise ValueError(f"window {w}x{h} at ({u0}, {v0}) leaves the {cam.width_px}x{cam.height_px} frame")
    return depth, (u0, v0)


def _detect_center(
    depth: np.ndarray, rows: np.ndarray, origin: tuple[int, int], cam: Intrinsics, cfg: CropConfig
) -> np.ndarray:
    """`detect_center` on a checked frame (or window at `origin` (u0, v0)) with its row keys."""
    u0, v0 = origin
    bits, max_key = depth.view(np.uint32), _max_key(cfg.max_depth_mm)
    com = _center_of_mass(
        depth, bits, rows, max_key, u0, v0, cam.fx, cam.fy, cfg.cube_mm, cfg.center_iterations
    )
    if not np.isfinite(com).all():
        raise NoHandError(f"no depth pixel in (0, {cfg.max_depth_mm:g}) mm: no hand in range")
    return com


_NO_KEY = np.uint32(0xFFFFFFFF)  # row key of a row without a candidate pixel
_INF_BITS = 0x7F800000  # bit pattern of +inf: finite non-negative floats lie below it
_SIGN_BIT = np.uint32(0x80000000)


@njit(cache=True)
def _row_minima(bits):  # pragma: no cover (numba)
    """Nearest-depth key (bits - 1, wrapping) of each row of a (h, w) uint32 view, and the
    largest bit pattern, in one pass of two vectorised reductions per row.

    On uint32 keys the loop (a wrapping subtraction, then two reductions) ran unvectorised (69 us
    a VGA frame against 25 us), so both reductions run on the keys with their sign bit flipped
    (`_signed`), which order as signed int32 exactly as the unsigned keys do."""
    height, width = bits.shape
    rows = np.empty(height, np.uint32)
    top = np.int32(-(2**31))
    one = np.uint32(1)
    for v in range(height):
        row = bits[v]
        key, row_top = np.int32(2**31 - 1), np.int32(-(2**31))
        for u in range(width):
            key = min(key, _signed(row[u] - one))
            row_top = max(row_top, _signed(row[u]))
        rows[v] = _unsigned(key)
        top = max(top, row_top)
    return rows, _unsigned(top)


@njit(cache=True, inline="always")
def _signed(key):  # pragma: no cover (numba)
    """uint32 -> int32 with the sign bit flipped: a < b as uint32 exactly where _signed(a) < _signed(b)."""
    return np.int32(key ^ _SIGN_BIT)


@njit(cache=True, inline="always")
def _unsigned(key):  # pragma: no cover (numba)
    """Inverse of `_signed`."""
    return np.uint32(key) ^ _SIGN_BIT


@njit(cache=True)
def _largest_bits(bits):  # pragma: no cover (numba)
    """The largest bit pattern of a frame's pixels (1-D uint32 view), for `_check_values`."""
    top = np.uint32(0)
    for i in range(len(bits)):
        top = max(top, bits[i])
    return top


@njit(cache=True, fastmath={"reassoc"})
def _sums_in_box(us, vs, ds, cu, cv, cd, hu, hv, hd):  # pragma: no cover (numba)
    """Sums of the candidates (u, v, d) within (hu, hv, hd) of (cu, cv, cd), and their count.

    Summed in any order (vectorised), yet exactly: u, v are integers and the depths float32 values
    within half a cube of the nearest one, so for a nearest depth above 1 mm every partial sum of
    a VGA frame's candidates fits float64's 53 bits."""
    su, sv, sd, count = 0.0, 0.0, 0.0, 0
    for i in range(len(us)):
        inside = (abs(us[i] - cu) <= hu) & (abs(vs[i] - cv) <= hv) & (abs(ds[i] - cd) <= hd)
        su += us[i] if inside else 0.0
        sv += vs[i] if inside else 0.0
        sd += ds[i] if inside else 0.0
        count += inside
    return su, sv, sd, count


@njit(cache=True)
def _floor_key(value):  # pragma: no cover (numba)
    """The key (bits - 1) of the largest float32 <= a positive float64."""
    f = np.float32(value)
    if np.float64(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    out = np.empty(1, np.float32)
    out[0] = f
    return out.view(np.uint32)[0] - np.uint32(1)


@njit(cache=True)
def _float_of_key(key):  # pragma: no cover (numba)
    """The depth (float64) whose key (bits - 1) is `key`."""
    bits = np.empty(1, np.uint32)
    bits[0] = key + np.uint32(1)
    return np.float64(bits.view(np.float32)[0])


@njit(cache=True)
def _center_of_mass(depth, bits, rows, max_key, u0, v0, fx, fy, cube_mm, iterations):  # pragma: no cover
    """Nearest depth d0 from the row keys; the candidates read from the rows that can hold one,
    each between its first and last candidate (row-major, the order a scan of the whole frame
    meets them); then refinements over the candidates.

    A candidate (0 < z < max_depth_mm, z <= band) is a pixel whose key (bits - 1) is at most
    `limit`, the smaller of the band's and the range's last key: one integer test, vectorised."""
    com = np.full(3, np.nan)
    key = rows.min()
    if key == _NO_KEY:
        return com
    band = _float_of_key(key) + 0.5 * cube_mm
    limit = min(_floor_key(band), max_key - np.uint32(1))
    height, width = depth.shape
    spans = np.empty((height, 2), np.int64)  # first and one-past-last candidate column per row
    cap = 0
    one, signed_limit = np.uint32(1), _signed(limit)
    for v in range(height):
        first, last = np.int32(width), np.int32(-1)
        if rows[v] <= limit:
            row = bits[v]
            for u in range(width):  # branch-free on int32 lanes (`_row_minima`): vectorises
                hit = _signed(row[u] - one) <= signed_limit
                first = min(first, np.int32(u) if hit else np.int32(width))
                last = max(last, np.int32(u) if hit else np.int32(-1))
        spans[v, 0], spans[v, 1] = first, last + 1
        cap += max(last + 1 - first, 0)
    # float32 holds each exactly (u, v < 2^24; the depths are float32) at half the bytes to sum
    us, vs, ds = np.empty(cap, np.float32), np.empty(cap, np.float32), np.empty(cap, np.float32)
    n = 0
    for v in range(height):
        for u in range(spans[v, 0], spans[v, 1]):
            if bits[v, u] - one <= limit:
                us[n], vs[n], ds[n] = u0 + u, v0 + v, depth[v, u]
                n += 1
    su, sv, sd, _ = _sums_in_box(us[:n], vs[:n], ds[:n], 0.0, 0.0, 0.0, np.inf, np.inf, np.inf)
    cu, cv, cd = su / n, sv / n, sd / n
    for _ in range(iterations):
        hu, hv, hd = 0.5 * cube_mm * fx / cd, 0.5 * cube_mm * fy / cd, 0.5 * cube_mm
        su, sv, sd, count = _sums_in_box(us[:n], vs[:n], ds[:n], cu, cv, cd, hu, hv, hd)
        if count == 0:
            break
        nu, nv, nd = su / count, sv / count, sd / count
        if max(abs(nu - cu), abs(nv - cv), abs(nd - cd)) <= 1e-3:
            break
        cu, cv, cd = nu, nv, nd
    com[0], com[1], com[2] = cu, cv, cd
    return com


def uvd_to_crop(uvd: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray:
    """(..., 3) full-frame uvd -> crop uvd (crop pixels, normalised depth)."""
    uvd = np.asarray(uvd, dtype=np.float64)
    hu, hv = half_size_px(com_uvd, cam, cfg.cube_mm)
    s = cfg.crop_px
    uc = (uvd[..., 0] - com_uvd[0]) * s / (2 * hu) + (s - 1) / 2
    vc = (uvd[..., 1] - com_uvd[1]) * s / (2 * hv) + (s - 1) / 2
    dc = (uvd[..., 2] - com_uvd[2]) / (0.5 * cfg.cube_mm)
    return np.stack([uc, vc, dc], axis=-1)


def crop_to_uvd(crop_uvd: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray:
    """Exact inverse of `uvd_to_crop`."""
    crop_uvd = np.asarray(crop_uvd, dtype=np.float64)
    hu, hv = half_size_px(com_uvd, cam, cfg.cube_mm)
    s = cfg.crop_px
    u = (crop_uvd[..., 0] - (s - 1) / 2) * (2 * hu) / s + com_uvd[0]
    v = (crop_uvd[..., 1] - (s - 1) / 2) * (2 * hv) / s + com_uvd[1]
    d = crop_uvd[..., 2] * (0.5 * cfg.cube_mm) + com_uvd[2]
    return np.stack([u, v, d], axis=-1)


def xyz_to_norm(xyz: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics, cube_mm: float) -> np.ndarray:
    """(..., 3) mm -> relative to the centre, in units of the cube's half side."""
    return (np.asarray(xyz, dtype=np.float64) - uvd_to_xyz(com_uvd, cam)) / (0.5 * cube_mm)


def norm_to_xyz(norm: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics, cube_mm: float) -> np.ndarray:
    """Exact inverse of `xyz_to_norm`."""
    return np.asarray(norm, dtype=np.float64) * (0.5 * cube_mm) + uvd_to_xyz(com_uvd, cam)


def crop_depth(
    depth_mm: np.ndarray,
    com_uvd: np.ndarray,
    cam: Intrinsics,
    cfg: CropConfig,
    origin_px: tuple[int, int] | None = None,
) -> np.ndarray:
    """(H, W) depth mm -> (crop_px, crop_px) float32 in [-1, 1], background +1. `origin_px`:
    `depth_mm` is a window of the camera's frame (see `preprocess`)."""
    depth, origin = _frame_or_window(depth_mm, origin_px, cam)
    _check_values(depth, _largest_bits(depth.reshape(-1).view(np.uint32)), _frame_name(origin_px))
    return _crop_depth(depth, origin, np.asarray(com_uvd, dtype=np.float64), cam, cfg)


def _crop_depth(
    depth: np.ndarray, origin: tuple[int, int], com_uvd: np.ndarray, cam: Intrinsics, cfg: CropConfig
) -> np.ndarray:
    """The crop of a checked frame, or of a window at `origin` (u0, v0) inside a frame that is 0
    outside the window. Each crop pixel samples the frame pixel nearest the point
    `crop_to_uvd` gives (np.rint: half to even), so only crop_px^2 frame pixels are read."""
    hu, hv = half_size_px(com_uvd, cam, cfg.cube_mm)
    out = np.empty((cfg.crop_px, cfg.crop_px), np.float32)
    _crop_kernel(
        depth, origin[0], origin[1], float(com_uvd[0]), float(com_uvd[1]),
        hu, hv, np.float32(com_uvd[2]), np.float32(0.5 * cfg.cube_mm), out,
    )  # fmt: skip
    return out


@njit(cache=True)
def _crop_kernel(depth, u0, v0, cu, cv, hu, hv, center_d, half_cube, out):  # pragma: no cover
    """The arithmetic of `crop_to_uvd` and of the normalisation, term for term, so crops are
    bitwise those of the vectorised numpy formulation."""
    s = out.shape[0]
    half = (s - 1) / 2
    height, width = depth.shape
    cols = np.empty(s, np.int64)  # window column of each crop column, -1 outside the window
    for j in range(s):
        col = np.int64(np.rint((j - half) * (2 * hu) / s + cu)) - u0
        cols[j] = col if 0 <= col < width else -1
    for i in range(s):
        row = np.int64(np.rint((i - half) * (2 * hv) / s + cv)) - v0
        for j in range(s):
            z = depth[row, cols[j]] if 0 <= row < height and cols[j] >= 0 else np.float32(0.0)
            d = (z - center_d) / half_cube
            if z <= 0 or d > 1:
                d = np.float32(BACKGROUND)
            out[i, j] = max(d, np.float32(-1.0))


@dataclass(frozen=True)
class Crop:
    depth: np.ndarray  # (S, S) float32 network input in [-1, 1]
    com_uvd: np.ndarray  # (3,) crop centre in the full frame


def preprocess(
    depth_mm: np.ndarray,
    cam: Intrinsics,
    cfg: CropConfig,
    center_uvd: np.ndarray | None = None,
    origin_px: tuple[int, int] | None = None,
) -> Crop:
    """Raw depth frame -> network input; the centre is detected unless given.

    With `origin_px` = (u0, v0), `depth_mm` (h, w) is the window of a camera-size frame whose
    top-left pixel is (u0, v0), the frame being 0 (missing) outside it: the crop and centre are
    those of that frame, for the work of the window (a rendered hand's box holds all its pixels).
    """
    depth, origin = _frame_or_window(depth_mm, origin_px, cam)
    return _preprocess(depth, origin, cam, cfg, center_uvd, _frame_name(origin_px))


def _preprocess(
    depth: np.ndarray,
    origin: tuple[int, int],
    cam: Intrinsics,
    cfg: CropConfig,
    center_uvd: np.ndarray | None,
    name: str,
) -> Crop:
    if center_uvd is None:
        rows, top_bits = _scan_frame(depth, cfg.max_depth_mm)
        _check_values(depth, top_bits, name)
        com = _detect_center(depth, rows, origin, cam, cfg)
    else:  # only the values to check: a lighter pass
        _check_values(depth, _largest_bits(depth.reshape(-1).view(np.uint32)), name)
        com = np.asarray(center_uvd, float)
    if com.shape != (3,) or not np.isfinite(com).all() or com[2] <= 0:
        raise ValueError(f"hand centre must be finite (u, v, d) with d > 0 mm, got {com}")
    crop = _crop_depth(depth, origin, com, cam, cfg)
    if (crop >= BACKGROUND).all():
        raise NoHandError(
            f"the {cfg.cube_mm:g} mm cube around centre {np.round(com, 1)} holds no depth pixel"
        )
    return Crop(depth=crop, com_uvd=com)
