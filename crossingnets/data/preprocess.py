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
    depth = np.asarray(depth_mm)
    if depth.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array in mm, got shape {depth.shape}")
    if depth.size == 0:
        raise ValueError(f"{name} is empty")
    depth = depth.astype(np.float32, copy=False)
    if not np.isfinite(depth).all():
        raise ValueError(f"{name} contains NaN or infinite depth; mark missing pixels with 0")
    if (depth < 0).any():
        raise ValueError(f"{name} contains negative depth; expected mm >= 0 (0 = missing)")
    return depth


def half_size_px(com_uvd: np.ndarray, cam: Intrinsics, cube_mm: float) -> tuple[float, float]:
    """Half side of the projected cube in pixels (u, v) at the centre's depth."""
    d = float(com_uvd[2])
    if d <= 0:
        raise ValueError(f"hand centre depth must be > 0 mm, got {d}")
    return 0.5 * cube_mm * cam.fx / d, 0.5 * cube_mm * cam.fy / d


def detect_center(depth_mm: np.ndarray, cam: Intrinsics, cfg: CropConfig = CropConfig()) -> np.ndarray:
    """Hand centre (u, v, d) as the centre of mass of the nearest blob, refined in the cube.

    Candidates are the pixels within half a cube behind the nearest valid depth d0 (the hand is the
    object nearest the sensor; a body or wall further back must not pull the centre, and a forearm
    pointing away is cut off). Their centre of mass is then refined `cfg.center_iterations` times
    over the candidates inside the cube around the current centre (DeepPrior, Oberweger 2015).
    """
    return _detect_center(check_depth(depth_mm), cam, cfg)


def _detect_center(depth: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray:
    com = _center_of_mass(depth, cam.fx, cam.fy, cfg.max_depth_mm, cfg.cube_mm, cfg.center_iterations)
    if not np.isfinite(com).all():
        raise NoHandError(f"no depth pixel in (0, {cfg.max_depth_mm:g}) mm: no hand in range")
    return com


@njit(cache=True)
def _center_of_mass(depth, fx, fy, max_depth_mm, cube_mm, iterations):  # pragma: no cover (numba)
    """Two passes over the frame, then refinements over the candidates alone: numpy's full-frame
    temporaries made this the slowest step from a rendered frame to the network input."""
    height, width = depth.shape
    d0 = np.inf
    for v in range(height):
        for u in range(width):
            z = depth[v, u]
            if 0.0 < z < max_depth_mm and z < d0:
                d0 = z
    com = np.full(3, np.nan)
    if d0 == np.inf:
        return com
    band = d0 + 0.5 * cube_mm
    uvd = np.empty((height * width, 3))
    n = 0
    for v in range(height):
        for u in range(width):
            z = depth[v, u]
            if 0.0 < z < max_depth_mm and z <= band:
                uvd[n, 0], uvd[n, 1], uvd[n, 2] = u, v, z
                n += 1
    com = uvd[:n].sum(axis=0) / n
    for _ in range(iterations):
        hu, hv, hd = 0.5 * cube_mm * fx / com[2], 0.5 * cube_mm * fy / com[2], 0.5 * cube_mm
        total = np.zeros(3)
        count = 0
        for i in range(n):
            if (
                abs(uvd[i, 0] - com[0]) <= hu
                and abs(uvd[i, 1] - com[1]) <= hv
                and abs(uvd[i, 2] - com[2]) <= hd
            ):
                total += uvd[i]
                count += 1
        if count == 0:
            break
        new = total / count
        if np.abs(new - com).max() <= 1e-3:
            break
        com = new
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


def crop_depth(depth_mm: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray:
    """(H, W) depth mm -> (crop_px, crop_px) float32 in [-1, 1], background +1."""
    return _crop_depth(check_depth(depth_mm), com_uvd, cam, cfg)


def _crop_depth(depth: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray:
    s = cfg.crop_px
    grid = np.arange(s, dtype=np.float64)
    src = crop_to_uvd(np.stack([grid, grid, np.zeros(s)], axis=-1), com_uvd, cam, cfg)
    cols = np.rint(src[:, 0]).astype(np.int64)
    rows = np.rint(src[:, 1]).astype(np.int64)
    col_ok = (cols >= 0) & (cols < depth.shape[1])
    row_ok = (rows >= 0) & (rows < depth.shape[0])
    patch = np.zeros((s, s), dtype=np.float32)
    patch[np.ix_(row_ok, col_ok)] = depth[np.ix_(rows[row_ok], cols[col_ok])]
    out = (patch - np.float32(com_uvd[2])) / np.float32(0.5 * cfg.cube_mm)
    out[(patch <= 0) | (out > 1)] = BACKGROUND
    return np.clip(out, -1.0, 1.0, out=out)


@dataclass(frozen=True)
class Crop:
    depth: np.ndarray  # (S, S) float32 network input in [-1, 1]
    com_uvd: np.ndarray  # (3,) crop centre in the full frame


def preprocess(
    depth_mm: np.ndarray, cam: Intrinsics, cfg: CropConfig, center_uvd: np.ndarray | None = None
) -> Crop:
    """Raw depth frame -> network input; the centre is detected unless given."""
    depth = check_depth(depth_mm)
    com = _detect_center(depth, cam, cfg) if center_uvd is None else np.asarray(center_uvd, float)
    if com.shape != (3,) or not np.isfinite(com).all() or com[2] <= 0:
        raise ValueError(f"hand centre must be finite (u, v, d) with d > 0 mm, got {com}")
    crop = _crop_depth(depth, com, cam, cfg)
    if (crop >= BACKGROUND).all():
        raise NoHandError(
            f"the {cfg.cube_mm:g} mm cube around centre {np.round(com, 1)} holds no depth pixel"
        )
    return Crop(depth=crop, com_uvd=com)
