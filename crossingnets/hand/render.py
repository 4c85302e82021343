"""Exact ray casting of capsule hands (and simple background surfaces) into depth frames.

A pinhole camera sits at the origin looking down +z (x right, y down, mm). Pixel (u, v) has its
centre at integer coordinates, as in `crossingnets.data.preprocess`, and its ray is
`t * ((u - cx) / fx, (v - cy) / fy, 1)`: with that unnormalised direction the ray parameter `t`
*is* the depth z, so every intersection gives depth directly.

Speed comes from doing only the work that can matter: each capsule is tested only inside the
bounding box of its projection (exact, since a capsule is the convex hull of its two end spheres),
frames run in parallel with numba, and background surfaces are drawn only in a window around the
hand, because the network's crop never looks further.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from crossingnets.camera import Intrinsics
from crossingnets.hand.capsules import Capsules

NEAR_MM = 1.0  # surfaces closer than this to the camera are never drawn (a box cannot be projected)


class Background(NamedTuple):
    """Surfaces behind (or below) the hand, camera frame, mm. Any count may be 0.

    Ellipsoids are axis-aligned: points p with sum(((p - centre) / radii) ** 2) <= 1 (a torso, a
    head). Planes are the points p with dot(normal, p) == offset (a table, a wall).
    """

    ellipsoid_center_mm: np.ndarray  # (B, E, 3)
    ellipsoid_radii_mm: np.ndarray  # (B, E, 3)
    plane_normal: np.ndarray  # (B, P, 3) unit vectors
    plane_offset_mm: np.ndarray  # (B, P)

    @staticmethod
    def empty(batch: int) -> Background:
        return Background(
            np.zeros((batch, 0, 3)), np.zeros((batch, 0, 3)), np.zeros((batch, 0, 3)), np.zeros((batch, 0))
        )


class Rendering(NamedTuple):
    """What the camera sees before any sensor effect."""

    depth_mm: np.ndarray  # (B, H, W) float32 z of the nearest surface, 0 where the ray hits nothing
    cos_view: np.ndarray  # (B, H, W) float32 cosine between surface normal and the ray back to the camera
    hand_box_px: np.ndarray  # (B, 4) int32 (u0, v0, u1, v1), end exclusive: holds every hand pixel
    roi_px: np.ndarray  # (B, 4) int32 (u0, v0, u1, v1): holds every nonzero pixel (hand + background)


def render_depth(capsules: Capsules, cam: Intrinsics) -> np.ndarray:
    """Capsule hands -> (B, H, W) float32 depth in mm, background 0 (no sensor effects)."""
    return render(capsules, cam).depth_mm


def render(
    capsules: Capsules,
    cam: Intrinsics,
    background: Background | None = None,
    background_margin_mm: float = 150.0,
) -> Rendering:
    """Ray cast hands and optional background surfaces into one z-buffer per frame.

    capsules: (B, K, 3) / (B, K) camera-frame mm. Background surfaces are drawn only inside the
    hand's pixel box grown by `background_margin_mm` (converted to pixels at the hand's nearest
    depth): with the default, any crop cube up to 300 mm centred on a hand point is covered, while
    the full frame would cost several times more. Pass `math.inf` for full frames.
    """
    start, end, radius = _check_capsules(capsules)
    batch = start.shape[0]
    bg = Background.empty(batch) if background is None else background
    ell_c, ell_r, pl_n, pl_d = (np.ascontiguousarray(a, dtype=np.float64) for a in bg)
    if ell_c.shape[0] != batch or pl_n.shape[0] != batch:
        raise ValueError(f"background batch {ell_c.shape[0]}/{pl_n.shape[0]} != capsule batch {batch}")
    if np.any(ell_r <= 0):
        raise ValueError("background ellipsoid radii must be > 0 mm")
    if not background_margin_mm >= 0:
        raise ValueError(f"background_margin_mm must be >= 0, got {background_margin_mm}")
    shape = (batch, cam.height_px, cam.width_px)
    # np.zeros maps untouched pages lazily, so frames pay only for the window they draw into.
    depth = np.zeros(shape, dtype=np.float32)
    cos_view = np.zeros(shape, dtype=np.float32)
    hand_box = np.zeros((batch, 4), dtype=np.int32)
    roi = np.zeros((batch, 4), dtype=np.int32)
    margin = min(float(background_margin_mm), 1e9)  # numba needs a finite float
    _render_batch(
        start, end, radius, ell_c, ell_r, pl_n, pl_d,
        cam.fx, cam.fy, cam.cx, cam.cy, margin, depth, cos_view, hand_box, roi,
    )  # fmt: skip
    return Rendering(depth, cos_view, hand_box, roi)


def _check_capsules(capsules: Capsules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 contiguous copies of the capsule arrays, or a ValueError naming the problem."""
    start, end, radius = (np.ascontiguousarray(a, dtype=np.float64) for a in capsules)
    if start.ndim != 3 or start.shape[-1] != 3 or end.shape != start.shape:
        raise ValueError(f"capsule ends must be (B, K, 3), got {start.shape} and {end.shape}")
    if radius.shape != start.shape[:2]:
        raise ValueError(f"capsule radii must be (B, K) = {start.shape[:2]}, got {radius.shape}")
    if not (np.isfinite(start).all() and np.isfinite(end).all() and np.isfinite(radius).all()):
        raise ValueError("capsules contain NaN or infinite values")
    if np.any(radius <= 0):
        raise ValueError("capsule radii must be > 0 mm")
    return start, end, radius


# ---------------------------------------------------------------------------------------------
# numba kernels. Boxes are float (u_min, v_min, u_max, v_max) in pixels until clipped to the frame.


@njit(cache=True)
def _sphere_box(x, y, z, r, fx, fy, cx, cy):
    """Projected extent of a sphere: u = fx * x / z + cx is monotone in x and in z over the
    sphere's bounding cube, so the cube's corners bound it. A sphere reaching the near plane gets
    an infinite box (every pixel is tested)."""
    if z - r < NEAR_MM:
        return -np.inf, -np.inf, np.inf, np.inf
    u_lo = min((x - r) / (z - r), (x - r) / (z + r)) * fx + cx
    u_hi = max((x + r) / (z - r), (x + r) / (z + r)) * fx + cx
    v_lo = min((y - r) / (z - r), (y - r) / (z + r)) * fy + cy
    v_hi = max((y + r) / (z - r), (y + r) / (z + r)) * fy + cy
    return u_lo, v_lo, u_hi, v_hi


@njit(cache=True)
def _clip_box(u_lo, v_lo, u_hi, v_hi, width, height):
    """Float extent -> integer pixel range [u0, u1) x [v0, v1) of pixel centres inside it."""
    u0 = max(0, math.ceil(max(u_lo, -1.0)))
    v0 = max(0, math.ceil(max(v_lo, -1.0)))
    u1 = min(width, math.floor(min(u_hi, width + 1.0)) + 1)
    v1 = min(height, math.floor(min(v_hi, height + 1.0)) + 1)
    return u0, v0, max(u0, u1), max(v0, v1)


@njit(cache=True)
def _capsule_hit(ax, ay, az, bx, by, bz, r, dx, dy):
    """Nearest hit of the ray t * (dx, dy, 1) with a capsule; returns (t, cos_view), t = 0 on a miss.

    The infinite cylinder around the axis is solved first; a hit whose foot lies beyond an end
    falls back to that end's sphere (the capsule is their union, and the cylinder's near side is
    always in front of the spheres' where they overlap).
    """
    ex, ey, ez = bx - ax, by - ay, bz - az  # axis
    ee = ex * ex + ey * ey + ez * ez
    dd = dx * dx + dy * dy + 1.0
    ed = ex * dx + ey * dy + ez
    ea = -(ex * ax + ey * ay + ez * az)  # axis . (origin - a)
    da = -(dx * ax + dy * ay + az)  # ray . (origin - a)
    aa = ax * ax + ay * ay + az * az
    if ee > 1e-12:
        qa = ee * dd - ed * ed
        qb = ee * da - ea * ed
        qc = ee * aa - ea * ea - r * r * ee
        h = qb * qb - qa * qc
        if h < 0.0:
            return 0.0, 0.0
        if qa > 1e-12:
            t = (-qb - math.sqrt(h)) / qa
            foot = ea + t * ed  # axis coordinate of the hit, times |axis|
            if 0.0 < foot < ee and t > 0.0:
                s = foot / ee
                nx = t * dx - ax - s * ex
                ny = t * dy - ay - s * ey
                nz = t - az - s * ez
                return t, -(nx * dx + ny * dy + nz) / (r * math.sqrt(dd))
            if foot >= ee:  # beyond the end: hit the end sphere
                ax, ay, az = bx, by, bz
        elif ea >= ee:  # ray parallel to the axis, origin beyond the end
            ax, ay, az = bx, by, bz
    return _sphere_hit(ax, ay, az, r, dx, dy, dd)


@njit(cache=True)
def _sphere_hit(cx, cy, cz, r, dx, dy, dd):
    """Nearest hit (t, cos_view) of the ray t * (dx, dy, 1) with a sphere; t = 0 on a miss."""
    b = dx * cx + dy * cy + cz  # ray . centre
    h = b * b - dd * (cx * cx + cy * cy + cz * cz - r * r)
    if h < 0.0:
        return 0.0, 0.0
    t = (b - math.sqrt(h)) / dd
    if t <= 0.0:
        return 0.0, 0.0
    nx, ny, nz = t * dx - cx, t * dy - cy, t - cz
    return t, -(nx * dx + ny * dy + nz) / (r * math.sqrt(dd))


@njit(cache=True)
def _ellipsoid_hit(c, radii, dx, dy):
    """Nearest hit (t, cos_view) with an axis-aligned ellipsoid, solved in its unit-sphere frame."""
    px, py, pz = dx / radii[0], dy / radii[1], 1.0 / radii[2]
    ox, oy, oz = -c[0] / radii[0], -c[1] / radii[1], -c[2] / radii[2]
    qa = px * px + py * py + pz * pz
    qb = px * ox + py * oy + pz * oz
    h = qb * qb - qa * (ox * ox + oy * oy + oz * oz - 1.0)
    if h < 0.0:
        return 0.0, 0.0
    t = (-qb - math.sqrt(h)) / qa
    if t <= 0.0:
        return 0.0, 0.0
    # Normal = gradient of the implicit function: (p - c) / radii^2.
    nx = (t * dx - c[0]) / (radii[0] * radii[0])
    ny = (t * dy - c[1]) / (radii[1] * radii[1])
    nz = (t - c[2]) / (radii[2] * radii[2])
    norm = math.sqrt((nx * nx + ny * ny + nz * nz) * (dx * dx + dy * dy + 1.0))
    return t, -(nx * dx + ny * dy + nz) / norm


@njit(cache=True)
def _plane_hit(n, offset, dx, dy):
    """Hit (t, cos_view) with the plane n . p = offset, seen from either side; t = 0 on a miss."""
    nd = n[0] * dx + n[1] * dy + n[2]
    if nd == 0.0:
        return 0.0, 0.0
    t = offset / nd
    if t <= 0.0:
        return 0.0, 0.0
    return t, abs(nd) / math.sqrt(dx * dx + dy * dy + 1.0)


@njit(cache=True)
def _store(depth, cos_view, v, u, t, c):
    """Z-buffer write: keep the nearest surface (0 = empty)."""
    if t >= NEAR_MM and (depth[v, u] == 0.0 or t < depth[v, u]):
        depth[v, u] = t
        cos_view[v, u] = c


@njit(cache=True)
def _render_hand(start, end, radius, fx, fy, cx, cy, depth, cos_view):
    """Draw one frame's capsules; returns the float box of the hand and its nearest depth."""
    height, width = depth.shape
    box = np.array([np.inf, np.inf, -np.inf, -np.inf])
    z_near = np.inf
    for k in range(radius.shape[0]):
        a, b, r = start[k], end[k], radius[k]
        a_box = _sphere_box(a[0], a[1], a[2], r, fx, fy, cx, cy)
        b_box = _sphere_box(b[0], b[1], b[2], r, fx, fy, cx, cy)
        lo_u, lo_v = min(a_box[0], b_box[0]), min(a_box[1], b_box[1])
        hi_u, hi_v = max(a_box[2], b_box[2]), max(a_box[3], b_box[3])
        box[0], box[1] = min(box[0], lo_u), min(box[1], lo_v)
        box[2], box[3] = max(box[2], hi_u), max(box[3], hi_v)
        z_near = min(z_near, a[2] - r, b[2] - r)
        u0, v0, u1, v1 = _clip_box(lo_u, lo_v, hi_u, hi_v, width, height)
        for v in range(v0, v1):
            dy = (v - cy) / fy
            for u in range(u0, u1):
                t, c = _capsule_hit(a[0], a[1], a[2], b[0], b[1], b[2], r, (u - cx) / fx, dy)
                _store(depth, cos_view, v, u, t, c)
    return box, z_near


@njit(cache=True)
def _render_background(ell_c, ell_r, pl_n, pl_d, fx, fy, cx, cy, u0, v0, u1, v1, depth, cos_view):
    """Draw the background surfaces of one frame inside the pixel window [u0, u1) x [v0, v1)."""
    for v in range(v0, v1):
        dy = (v - cy) / fy
        for u in range(u0, u1):
            dx = (u - cx) / fx
            for e in range(ell_c.shape[0]):
                t, c = _ellipsoid_hit(ell_c[e], ell_r[e], dx, dy)
                _store(depth, cos_view, v, u, t, c)
            for p in range(pl_n.shape[0]):
                t, c = _plane_hit(pl_n[p], pl_d[p], dx, dy)
                _store(depth, cos_view, v, u, t, c)


@njit(parallel=True, cache=True)
def _render_batch(
    start, end, radius, ell_c, ell_r, pl_n, pl_d, fx, fy, cx, cy, margin_mm, depth, cos_view, hand_box, roi
):
    height, width = depth.shape[1], depth.shape[2]
    for b in prange(depth.shape[0]):
        box, z_near = _render_hand(start[b], end[b], radius[b], fx, fy, cx, cy, depth[b], cos_view[b])
        if box[0] > box[2]:  # no capsules: nothing drawn, empty boxes
            continue
        _set_box(hand_box[b], _clip_box(box[0], box[1], box[2], box[3], width, height))
        if ell_c.shape[1] + pl_n.shape[1] == 0:
            roi[b] = hand_box[b]
            continue
        grow_u = margin_mm * fx / max(z_near, NEAR_MM)
        grow_v = margin_mm * fy / max(z_near, NEAR_MM)
        window = _clip_box(box[0] - grow_u, box[1] - grow_v, box[2] + grow_u, box[3] + grow_v, width, height)
        _set_box(roi[b], window)
        u0, v0, u1, v1 = window
        _render_background(
            ell_c[b], ell_r[b], pl_n[b], pl_d[b], fx, fy, cx, cy, u0, v0, u1, v1, depth[b], cos_view[b]
        )


@njit(cache=True)
def _set_box(out, box):
    out[0], out[1], out[2], out[3] = box[0], box[1], box[2], box[3]
