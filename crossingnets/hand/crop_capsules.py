"""Capsules drawn straight into a crop: the kinematic generator's renderer (issue 11: fingers).

Coordinates are the crop's own (`crop_coordinates`): u, v across the crop in [-1, 1], depth in
units of the cube's half side, so that one unit is about the same length along all three axes
(half the cube's side at the centre's depth). Rays are parallel to the depth axis (orthographic):
inside a 300 mm cube 500 mm away the perspective within a capsule is a fraction of a pixel at
64 px, while where the crop sits in the frame (the larger perspective effect, ~1.8 px) is already
in the projected ends. Each capsule is tested only at the pixels of its own outline's bounding box,
so a hand of 26 capsules costs a few thousand pixel tests, not 26 x S^2. One thread: numba's
parallel loop spun both cores for the app's one-hand calls (an upload's CPU time doubled).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit


def crop_coordinates(points_mm: torch.Tensor, center_mm: torch.Tensor, cube_mm: float) -> torch.Tensor:
    """Camera-frame points (B, N, 3) and crop centres (B, 3), mm -> where the crop shows them (B, N,
    3): u = (x / z - cx / cz) * cz / half side, the same for v, depth (z - cz) / half side."""
    half = 0.5 * cube_mm
    center = center_mm[:, None]
    uv = (points_mm[..., :2] / points_mm[..., 2:] - center[..., :2] / center[..., 2:]) * (
        center[..., 2:] / half
    )
    return torch.cat([uv, (points_mm[..., 2:] - center[..., 2:]) / half], -1)


def capsules_in_crop(
    start_mm: torch.Tensor, end_mm: torch.Tensor, radius_mm: torch.Tensor, center_mm: torch.Tensor,
    cube_mm: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Capsules, camera frame, mm (start, end (B, K, 3), radius (B, K)) around crop centres (B, 3) ->
    the same in crop coordinates, as `draw_crop_capsules` reads them; a radius shrinks with its
    distance: by the mean of its two ends' cz / z."""
    near = center_mm[:, None, 2]
    shrink = 0.5 * (near / start_mm[..., 2] + near / end_mm[..., 2])
    return (
        crop_coordinates(start_mm, center_mm, cube_mm),
        crop_coordinates(end_mm, center_mm, cube_mm),
        radius_mm / (0.5 * cube_mm) * shrink,
    )


@njit(cache=True, fastmath=True)
def _sphere_hit(pu: float, pv: float, cu: float, cv: float, cd: float, r2: float) -> float:
    h2 = r2 - (pu - cu) ** 2 - (pv - cv) ** 2
    return cd - math.sqrt(h2) if h2 >= 0.0 else math.inf


@njit(cache=True, fastmath=True)
def _capsule_hit(pu: float, pv: float, a: np.ndarray, b: np.ndarray, r: float) -> float:
    """Depth of the first point of the capsule a -> b (radius r) on the ray through (pu, pv) along
    +depth, or inf: the nearer of its end spheres and its cylinder between them."""
    r2 = r * r
    t = min(_sphere_hit(pu, pv, a[0], a[1], a[2], r2), _sphere_hit(pu, pv, b[0], b[1], b[2], r2))
    eu, ev, ed = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    length = math.sqrt(eu * eu + ev * ev + ed * ed)
    if length < 1e-9:
        return t
    nu, nv, nd = eu / length, ev / length, ed / length
    wu, wv, wd = pu - a[0], pv - a[1], -a[2]  # from a to the ray's point at depth 0
    along = wu * nu + wv * nv + wd * nd
    qu, qv, qd = wu - along * nu, wv - along * nv, wd - along * nd  # its part across the axis
    qa = 1.0 - nd * nd  # |ray direction across the axis|^2
    if qa < 1e-9:
        return t  # the axis runs along the ray: the end spheres cover the outline
    disc = qd * qd - qa * (qu * qu + qv * qv + qd * qd - r2)
    if disc < 0.0:
        return t
    hit = (-qd - math.sqrt(disc)) / qa
    s = (along + hit * nd) / length
    return min(t, hit) if 0.0 <= s <= 1.0 else t


@njit(cache=True, fastmath=True)
def _draw(start: np.ndarray, end: np.ndarray, radius: np.ndarray, size: int) -> np.ndarray:
    out = np.full((start.shape[0], size, size), np.inf, np.float32)
    pixel = 2.0 / size
    for f in range(start.shape[0]):
        for k in range(start.shape[1]):
            a, b, r = start[f, k], end[f, k], radius[f, k]
            if r <= 0.0:
                continue
            c0 = max(0, int(math.floor((min(a[0], b[0]) - r + 1.0) / pixel)))
            c1 = min(size - 1, int(math.floor((max(a[0], b[0]) + r + 1.0) / pixel)))
            r0 = max(0, int(math.floor((min(a[1], b[1]) - r + 1.0) / pixel)))
            r1 = min(size - 1, int(math.floor((max(a[1], b[1]) + r + 1.0) / pixel)))
            # The capsule's outline is the stadium of points within r of its axis seen along the
            # rays: a pixel farther (a little margin for rounding) cannot hit, so the exact test
            # runs only inside (the bounding box of a slanted finger is mostly outside it).
            eu, ev = b[0] - a[0], b[1] - a[1]
            inv = 1.0 / max(eu * eu + ev * ev, 1e-18)
            reach = r * r * (1.0 + 1e-6) + 1e-12
            for row in range(r0, r1 + 1):
                pv = (row + 0.5) * pixel - 1.0
                for col in range(c0, c1 + 1):
                    pu = (col + 0.5) * pixel - 1.0
                    s = min(1.0, max(0.0, ((pu - a[0]) * eu + (pv - a[1]) * ev) * inv))
                    du, dv = pu - a[0] - s * eu, pv - a[1] - s * ev
                    if du * du + dv * dv > reach:
                        continue
                    hit = _capsule_hit(pu, pv, a, b, r)
                    if hit < out[f, row, col]:
                        out[f, row, col] = hit
    return out


def draw_crop_capsules(start: np.ndarray, end: np.ndarray, radius: np.ndarray, size: int) -> np.ndarray:
    """Capsules in crop coordinates, start and end (B, K, 3), radius (B, K) in the same units ->
    (B, size, size) float32 depth of the nearest surface (+inf where the ray meets none). Pixel
    (row, col) is centred at u = (col + 0.5) * 2 / size - 1, v likewise from row."""
    start, end = (np.ascontiguousarray(x, np.float64) for x in (start, end))
    radius = np.ascontiguousarray(radius, np.float64)
    if start.shape != end.shape or start.ndim != 3 or start.shape[2] != 3 or radius.shape != start.shape[:2]:
        raise ValueError(
            f"capsules must be start, end (B, K, 3) and radius (B, K), got {start.shape}, {end.shape}, {radius.shape}"
        )
    return _draw(start, end, radius, int(size))
