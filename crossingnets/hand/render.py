"""Exact ray casting of capsule hands (and simple background surfaces) into depth frames.

A pinhole camera sits at the origin looking down +z (x right, y down, mm). Pixel (u, v) has its
centre at integer coordinates, as in `crossingnets.data.preprocess`, and its ray is
`t * ((u - cx) / fx, (v - cy) / fy, 1)`: with that unnormalised direction the ray parameter `t`
*is* the depth z, so every intersection gives depth directly.

Speed comes from doing only the work that can matter: each capsule is tested only at pixels
inside a conservative outline of its image (row by row, a band around its projected axis: a
capsule is the convex hull of its end spheres, so its image is the hull of theirs), frames run in
parallel with numba, and background surfaces are drawn only in a window around the hand, because
the network's crop never looks further.
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
    """What the camera sees before any sensor effect: whole frames, or with `window_start` each
    frame's roi alone, packed (the frame is 0 outside its roi)."""

    depth_mm: np.ndarray  # (B, H, W) float32 z of the nearest surface, 0 where the ray hits nothing
    cos_view: np.ndarray  # (B, H, W) float32 cosine between surface normal and the ray back to the camera
    hand_box_px: np.ndarray  # (B, 4) int32 (u0, v0, u1, v1), end exclusive: holds every hand pixel
    roi_px: np.ndarray  # (B, 4) int32 (u0, v0, u1, v1): holds every nonzero pixel (hand + background)
    # (B + 1,) int64: frame b's roi, row-major, is [start[b], start[b + 1]) of the arrays above, which
    # are then 1-D. None: whole frames.
    window_start: np.ndarray | None = None

    def window(self, array: np.ndarray, b: int) -> np.ndarray:
        """Frame b's roi (h, w) in `array` (depth_mm, cos_view, or an array shaped like them)."""
        u0, v0, u1, v1 = self.roi_px[b]
        if self.window_start is None:
            return array[b, v0:v1, u0:u1]
        return array[self.window_start[b] : self.window_start[b + 1]].reshape(v1 - v0, u1 - u0)

    def layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays as the kernels see them: frame b is flat[start[b] : start[b] + h * w] shaped
        (h, w) = shape[b], whose pixel [0, 0] is frame pixel (u, v) = origin[b]."""
        batch = len(self.roi_px)
        if self.window_start is None:
            h, w = self.depth_mm.shape[1:]
            start = np.arange(batch, dtype=np.int64) * (h * w)
            return start, np.tile(np.array([h, w], np.int64), (batch, 1)), np.zeros((batch, 2), np.int64)
        size = (self.roi_px[:, 2:] - self.roi_px[:, :2]).astype(np.int64)
        return self.window_start[:-1], size[:, ::-1].copy(), self.roi_px[:, :2].astype(np.int64)


def render_depth(capsules: Capsules, cam: Intrinsics) -> np.ndarray:
    """Capsule hands -> (B, H, W) float32 depth in mm, background 0 (no sensor effects)."""
    return render(capsules, cam).depth_mm


def render(
    capsules: Capsules,
    cam: Intrinsics,
    background: Background | None = None,
    background_margin_mm: float = 150.0,
    windows: bool = False,
) -> Rendering:
    """Ray cast hands and optional background surfaces into one z-buffer per frame.

    capsules: (B, K, 3) / (B, K) camera-frame mm. Background surfaces are drawn only inside the
    hand's pixel box grown by `background_margin_mm` (converted to pixels at the hand's nearest
    depth): with the default, any crop cube up to 300 mm centred on a hand point is covered, while
    the full frame would cost several times more. Pass `math.inf` for full frames.

    windows: return each frame's roi alone, packed (`Rendering.window_start`): the same pixels as
    the frames, without allocating and touching (B, H, W) arrays that are 0 but for the hand.
    """
    scene = _prepare_scene(capsules, cam, background, background_margin_mm)
    roi = scene.roi_px
    if windows:
        area = np.prod((roi[:, 2:] - roi[:, :2]).astype(np.int64), axis=1)
        start = np.concatenate([[0], np.cumsum(area)]).astype(np.int64)
        shape: tuple[int, ...] = (int(start[-1]),)
    else:
        start, shape = None, (len(roi), cam.height_px, cam.width_px)
    # np.zeros maps untouched pages lazily, so whole frames pay only for the window they draw into.
    out = Rendering(np.zeros(shape, np.float32), np.zeros(shape, np.float32), scene.hand_box_px, roi, start)
    _render_batch(
        *scene.arrays, *_camera_args(cam), roi, *out.layout(), _flat(out.depth_mm), _flat(out.cos_view)
    )
    return out


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous array (the kernels' layout)."""
    return array.reshape(-1)


class _Scene(NamedTuple):
    """Validated float64 geometry and the pixel windows it will occupy (kernel input)."""

    # capsule start, end, radius, ellipsoid centre, radii, plane normal, plane offset
    arrays: tuple[np.ndarray, ...]
    hand_box_px: np.ndarray  # (B, 4) int32
    roi_px: np.ndarray  # (B, 4) int32


def _prepare_scene(
    capsules: Capsules, cam: Intrinsics, background: Background | None, background_margin_mm: float
) -> _Scene:
    """Check the inputs and find, per frame, the hand's pixel box and the window to draw in."""
    start, end, radius = _check_capsules(capsules)
    batch = start.shape[0]
    bg = Background.empty(batch) if background is None else background
    ell_c, ell_r, pl_n, pl_d = (np.ascontiguousarray(a, dtype=np.float64) for a in bg)
    if ell_c.shape[0] != batch or pl_n.shape[0] != batch:
        raise ValueError(f"background batch {ell_c.shape[0]}/{pl_n.shape[0]} != capsule batch {batch}")
    if np.any(ell_r <= 0):
        raise ValueError("background ellipsoid radii must be > 0 mm")
    if not np.allclose(np.linalg.norm(pl_n, axis=-1), 1.0, atol=1e-6):
        raise ValueError("background plane normals must be unit vectors")
    if not background_margin_mm >= 0:
        raise ValueError(f"background_margin_mm must be >= 0, got {background_margin_mm}")
    margin = min(float(background_margin_mm), 1e9)  # numba needs a finite float
    hand_box = np.zeros((batch, 4), dtype=np.int32)
    roi = np.zeros((batch, 4), dtype=np.int32)
    _extents(start, end, radius, ell_c, ell_r, pl_n, pl_d, *_camera_args(cam), margin, hand_box, roi)
    return _Scene((start, end, radius, ell_c, ell_r, pl_n, pl_d), hand_box, roi)


def _camera_args(cam: Intrinsics) -> tuple[float, float, float, float, int, int]:
    return cam.fx, cam.fy, cam.cx, cam.cy, cam.width_px, cam.height_px


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
# numba kernels. Drawing goes into a *window*: 2-D arrays holding the frame's pixels
# [u0, u0 + w) x [v0, v0 + h); a full frame is the window with origin (0, 0).


@njit(cache=True)
def _sphere_disc(x, y, z, r, fx, fy, cx, cy):
    """Projected centre (u, v) and a radius rho (px) of a disc around it holding the sphere's image;
    rho = inf when the sphere reaches the near plane or the image's horizon.

    The silhouette cone has half angle a = asin(r / D) around a centre at angle t off the optical
    axis; its image point farthest from the projected centre lies outward along the radial line, at
    f * (tan(t + a) - tan(t)) (the image stretches radially, never tangentially beyond that).
    """
    dist = math.sqrt(x * x + y * y + z * z)
    if z - r < NEAR_MM:
        return 0.0, 0.0, np.inf
    tan_t = math.sqrt(x * x + y * y) / z
    tan_a = r / math.sqrt(dist * dist - r * r)
    if tan_t * tan_a >= 0.99:
        return 0.0, 0.0, np.inf
    f = max(fx, fy)
    rho = f * ((tan_t + tan_a) / (1.0 - tan_t * tan_a) - tan_t)
    return fx * x / z + cx, fy * y / z + cy, rho * 1.0001 + 0.01  # margin for rounding


@njit(cache=True)
def _capsule_outline(a, b, r, fx, fy, cx, cy):
    """The capsule's image lies in the 2-D stadium (segment pa-pb grown by rho): a capsule is the
    convex hull of its end spheres and perspective maps hulls to hulls. Returns pa, pb, rho."""
    ua, va, rho_a = _sphere_disc(a[0], a[1], a[2], r, fx, fy, cx, cy)
    ub, vb, rho_b = _sphere_disc(b[0], b[1], b[2], r, fx, fy, cx, cy)
    return ua, va, ub, vb, max(rho_a, rho_b)


@njit(cache=True)
def _row_span(ua, va, ub, vb, rho, v):
    """Float u-interval of row v inside the stadium's box and its band around the segment line."""
    lo, hi = min(ua, ub) - rho, max(ua, ub) + rho
    du, dv = ub - ua, vb - va
    length = math.sqrt(du * du + dv * dv)
    if length > 1e-9 and abs(dv) > 1e-9 * length:
        # |cross(p - pa, dir)| <= rho with p = (u, v): an interval of u of half width rho * L / |dv|.
        mid = ua + (v - va) * du / dv
        half = rho * length / abs(dv)
        lo, hi = max(lo, mid - half), min(hi, mid + half)
    return lo, hi


@njit(cache=True)
def _clip_range(lo, hi, first, stop):
    """Integer range [i0, i1) of pixel centres in [lo, hi], clipped to [first, stop)."""
    if not hi >= lo:  # also catches NaN
        return first, first
    i0 = max(first, math.ceil(max(lo, first - 1.0)))
    i1 = min(stop, math.floor(min(hi, stop + 1.0)) + 1)
    return i0, max(i0, i1)


@njit(cache=True)
def _extents(
    start, end, radius, ell_c, ell_r, pl_n, pl_d, fx, fy, cx, cy, width, height, margin_mm, hand_box, roi
):
    """Per frame: the hand's pixel box and the drawing window (the box grown by the background
    margin, converted at the hand's nearest depth, when the frame has a visible surface)."""
    for b in range(start.shape[0]):
        u_lo, v_lo, u_hi, v_hi, z_near = np.inf, np.inf, -np.inf, -np.inf, np.inf
        for k in range(radius.shape[1]):
            ua, va, ub, vb, rho = _capsule_outline(start[b, k], end[b, k], radius[b, k], fx, fy, cx, cy)
            u_lo, u_hi = min(u_lo, ua - rho, ub - rho), max(u_hi, ua + rho, ub + rho)
            v_lo, v_hi = min(v_lo, va - rho, vb - rho), max(v_hi, va + rho, vb + rho)
            z_near = min(z_near, start[b, k, 2] - radius[b, k], end[b, k, 2] - radius[b, k])
        _set_box(hand_box[b], u_lo, v_lo, u_hi, v_hi, width, height)
        grow = margin_mm / max(z_near, NEAR_MM)
        if u_lo > u_hi or len(_visible_surfaces(ell_c[b], ell_r[b], pl_n[b], pl_d[b])) == 0:
            roi[b] = hand_box[b]
        else:
            _set_box(
                roi[b], u_lo - grow * fx, v_lo - grow * fy, u_hi + grow * fx, v_hi + grow * fy, width, height
            )


@njit(cache=True)
def _visible_surfaces(ell_c, ell_r, pl_n, pl_d):
    """One frame's background surfaces that can be seen, as tuples of scalars (no per-pixel array
    views: those cost atomic refcounts). Absent surfaces are encoded out of sight: an ellipsoid
    wholly behind the camera, or a plane parallel to the image behind it. Ellipsoids become
    (0, inverse radii, -centre / radii, |centre / radii|^2 - 1); planes (1, normal, offset, 0, 0)."""
    out = []
    for e in range(ell_c.shape[0]):
        if ell_c[e, 2] + ell_r[e, 2] > NEAR_MM:
            ix, iy, iz = 1.0 / ell_r[e, 0], 1.0 / ell_r[e, 1], 1.0 / ell_r[e, 2]
            ox, oy, oz = -ell_c[e, 0] * ix, -ell_c[e, 1] * iy, -ell_c[e, 2] * iz
            out.append((0, ix, iy, iz, ox, oy, oz, ox * ox + oy * oy + oz * oz - 1.0))
    for q in range(pl_n.shape[0]):
        nx, ny, nz, d = pl_n[q, 0], pl_n[q, 1], pl_n[q, 2], pl_d[q]
        if nx != 0.0 or ny != 0.0 or d / nz >= NEAR_MM:
            out.append((1, nx, ny, nz, d, 0.0, 0.0, 0.0))
    return out


@njit(cache=True)
def _set_box(out, u_lo, v_lo, u_hi, v_hi, width, height):
    out[0], out[2] = _clip_range(u_lo, u_hi, 0, width)
    out[1], out[3] = _clip_range(v_lo, v_hi, 0, height)


@njit(cache=True)
def _draw_capsule(a, b, r, fx, fy, cx, cy, depth, cos_view, u0, v0):
    """Z-buffer one capsule into the window, pixel by pixel inside its projected outline.

    Ray t * d, d = (dx, dy, 1), against the infinite cylinder around axis e = b - a: with
    w = t d - a, |w|^2 - (w . e)^2 / |e|^2 = r^2 is a quadratic in t whose coefficients are hoisted
    out of the loops. A hit whose foot on the axis lies beyond an end falls back to that end's
    sphere (the capsule is the cylinder piece plus the two spheres).
    """
    ax, ay, az = a[0], a[1], a[2]
    ex, ey, ez = b[0] - ax, b[1] - ay, b[2] - az
    ee = ex * ex + ey * ey + ez * ez
    ea = -(ex * ax + ey * ay + ez * az)  # e . (origin - a)
    qc = ee * (ax * ax + ay * ay + az * az - r * r) - ea * ea
    ua, va, ub, vb, rho = _capsule_outline(a, b, r, fx, fy, cx, cy)
    height, width = depth.shape
    ifx, ify = 1.0 / fx, 1.0 / fy
    # Every hit lies at depth >= the capsule's nearest z; a pixel already nearer than that (with a
    # margin far above rounding) cannot change, so its quadratic is skipped.
    hidden_below = min(az, b[2]) - r - 1e-3
    row0, row1 = _clip_range(min(va, vb) - rho, max(va, vb) + rho, v0, v0 + height)
    for v in range(row0, row1):
        lo, hi = _row_span(ua, va, ub, vb, rho, v)
        col0, col1 = _clip_range(lo, hi, u0, u0 + width)
        dy = (v - cy) * ify
        ed_row, da_row, dd_row = ey * dy + ez, -(ay * dy + az), dy * dy + 1.0
        for u in range(col0, col1):
            z = depth[v - v0, u - u0]
            if 0.0 < z < hidden_below:
                continue
            dx = (u - cx) * ifx
            dd = dx * dx + dd_row
            ed = ex * dx + ed_row
            da = da_row - ax * dx
            qa = ee * dd - ed * ed
            qb = ee * da - ea * ed
            h = qb * qb - qa * qc
            if h < 0.0:
                continue  # the ray misses the infinite cylinder, hence the capsule
            t, foot = 0.0, -1.0
            if qa > 1e-9 * ee * dd:
                t = (-qb - math.sqrt(h)) / qa
                foot = ea + t * ed  # axis coordinate of the hit, times |e|^2
            i, j = v - v0, u - u0
            if 0.0 < foot < ee and t > 0.0:
                if _nearer(depth, i, j, t):
                    s = foot / ee
                    nx, ny, nz = t * dx - ax - s * ex, t * dy - ay - s * ey, t - az - s * ez
                    depth[i, j] = t
                    cos_view[i, j] = -(nx * dx + ny * dy + nz) / (r * math.sqrt(dd))
            elif foot >= ee or (foot < 0.0 and qa <= 1e-9 * ee * dd and ea >= ee):
                _store_sphere(depth, cos_view, i, j, b[0], b[1], b[2], r, dx, dy, dd)
            else:
                _store_sphere(depth, cos_view, i, j, ax, ay, az, r, dx, dy, dd)


@njit(cache=True)
def _nearer(depth, i, j, t):
    """Z-test: t is in front of the near plane and of what the window holds (0 = empty)."""
    return t >= NEAR_MM and (depth[i, j] == 0.0 or t < depth[i, j])


@njit(cache=True)
def _store_sphere(depth, cos_view, i, j, cx, cy, cz, r, dx, dy, dd):
    """Z-buffer the hit of the ray t * (dx, dy, 1) with a sphere, if any."""
    b = dx * cx + dy * cy + cz  # ray . centre
    h = b * b - dd * (cx * cx + cy * cy + cz * cz - r * r)
    if h < 0.0:
        return
    t = (b - math.sqrt(h)) / dd
    if _nearer(depth, i, j, t):
        nx, ny, nz = t * dx - cx, t * dy - cy, t - cz
        depth[i, j] = t
        cos_view[i, j] = -(nx * dx + ny * dy + nz) / (r * math.sqrt(dd))


@njit(cache=True)
def _ellipsoid_hit(ix, iy, iz, ox, oy, oz, oo, dx, dy):
    """Nearest hit (t, cos_view) of the ray t * (dx, dy, 1) with an ellipsoid, solved in its
    unit-sphere frame (see `_visible_surfaces` for the terms)."""
    px, py, pz = dx * ix, dy * iy, iz
    qa = px * px + py * py + pz * pz
    qb = px * ox + py * oy + pz * oz
    h = qb * qb - qa * oo
    if h < 0.0:
        return 0.0, 0.0
    t = (-qb - math.sqrt(h)) / qa
    if t <= 0.0:
        return 0.0, 0.0
    # Normal = gradient of the implicit function, (p - c) / radii^2 = (t * scaled ray + o) / radii.
    nx, ny, nz = (t * px + ox) * ix, (t * py + oy) * iy, (t * pz + oz) * iz
    norm = math.sqrt((nx * nx + ny * ny + nz * nz) * (dx * dx + dy * dy + 1.0))
    return t, -(nx * dx + ny * dy + nz) / norm


@njit(cache=True)
def _plane_hit(nx, ny, nz, offset, dx, dy):
    """Hit (t, cos_view) with the plane n . p = offset, seen from either side; t = 0 on a miss."""
    nd = nx * dx + ny * dy + nz
    if nd == 0.0:
        return 0.0, 0.0
    t = offset / nd
    if t <= 0.0:
        return 0.0, 0.0
    return t, abs(nd) / math.sqrt(dx * dx + dy * dy + 1.0)


@njit(cache=True)
def _store(depth, cos_view, i, j, t, c):
    """Z-buffer write at window row i, column j: keep the nearest surface."""
    if _nearer(depth, i, j, t):
        depth[i, j] = t
        cos_view[i, j] = c


@njit(cache=True)
def _draw_frame(start, end, radius, ell_c, ell_r, pl_n, pl_d, fx, fy, cx, cy, depth, cos_view, u0, v0):
    """One frame's capsules, then its visible background surfaces over the whole window."""
    for k in range(radius.shape[0]):
        _draw_capsule(start[k], end[k], radius[k], fx, fy, cx, cy, depth, cos_view, u0, v0)
    surfaces = _visible_surfaces(ell_c, ell_r, pl_n, pl_d)
    if len(surfaces) == 0:
        return
    height, width = depth.shape
    for i in range(height):
        dy = (v0 + i - cy) / fy
        for j in range(width):
            dx = (u0 + j - cx) / fx
            for kind, a, b, c, d, e, f, g in surfaces:
                if kind == 0:
                    t, cos = _ellipsoid_hit(a, b, c, d, e, f, g, dx, dy)
                else:
                    t, cos = _plane_hit(a, b, c, d, dx, dy)
                _store(depth, cos_view, i, j, t, cos)


@njit(parallel=True, cache=True)
def _render_batch(
    start, end, radius, ell_c, ell_r, pl_n, pl_d, fx, fy, cx, cy, width, height, roi, at, shape, origin,
    depth, cos_view,
):  # fmt: skip
    """Frame b's roi into its array: depth[at[b] : at[b] + h * w] shaped (h, w) = shape[b], pixel
    [0, 0] at frame pixel origin[b] (`Rendering.layout`)."""
    for b in prange(roi.shape[0]):
        u0, v0, u1, v1 = roi[b, 0], roi[b, 1], roi[b, 2], roi[b, 3]
        h, w = shape[b, 0], shape[b, 1]
        frame_depth = depth[at[b] : at[b] + h * w].reshape((h, w))
        frame_cos = cos_view[at[b] : at[b] + h * w].reshape((h, w))
        i0, j0 = v0 - origin[b, 1], u0 - origin[b, 0]
        i1, j1 = i0 + v1 - v0, j0 + u1 - u0
        _draw_frame(
            start[b], end[b], radius[b], ell_c[b], ell_r[b], pl_n[b], pl_d[b], fx, fy, cx, cy,
            frame_depth[i0:i1, j0:j1], frame_cos[i0:i1, j0:j1], u0, v0,
        )  # fmt: skip
