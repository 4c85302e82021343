"""A structured-light depth sensor (Kinect v1, as in NYU) applied to rendered depth frames.

Effects, in the order the kernel applies them to each frame's window of interest:
- range limits: nothing nearer than `min_range_mm` or farther than `max_range_mm` is measured;
- projector shadows: the IR projector sits `baseline_mm` to the side of the camera, so a surface
  the projector cannot see (just beside a nearer object) returns nothing: the black bands between
  the hand and the body in the real NYU frames;
- silhouette edges: pixels within `edge_band_px` of a depth jump go missing in blobs (block
  matching fails there), which makes real silhouettes ragged;
- grazing angles: too little IR comes back from surfaces seen edge-on;
- random isolated pixels and a few hole blobs on the hand;
- depth noise, spatially correlated (block matching averages a window), std growing with z^2;
- quantisation: Kinect v1 measures disparity in integer steps, so depth comes in steps that grow
  with z^2.

All randomness is a hash of (frame seed, effect, pixel), with one seed per frame drawn from the
caller's `np.random.Generator`: results are bitwise identical for a seed, whatever the thread count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from crossingnets.camera import Intrinsics
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.render import Background, Rendering, render


@dataclass(frozen=True)
class SensorConfig:
    """Defaults imitate NYU's Kinect v1: quantisation measured on ../shared/data/depth_samples/nyu,
    noise from the literature, edge / grazing / hole settings tuned by eye until 128x128 crops of
    synthetic hands look like the crop of that real frame (ragged rims, few holes inside)."""

    # Depth step at 1 m; NYU frame 1 shows steps of 1.7 mm at 750 mm, 3 at 1000, 6.8 at 1500 (z^2).
    quant_step_at_1m_mm: float = 3.0
    # Noise std at 1 m (Khoshelham & Elberink 2012: 1.4 mm at 1 m, growing with z^2).
    noise_std_at_1m_mm: float = 1.4
    noise_cell_px: int = 4  # correlation length of the noise (block matching window)
    min_range_mm: float = 250.0  # nearer surfaces return nothing
    max_range_mm: float = 2000.0  # NYU frames hold nothing beyond 2001 mm
    baseline_mm: float = 75.0  # projector to camera, along +u (Kinect v1); 0 disables shadows
    edge_jump_mm: float = 40.0  # a neighbour step larger than this is a silhouette edge
    edge_band_px: int = 2  # pixels this close to an edge may go missing
    edge_dropout: float = 0.4  # chance of losing a pixel right at an edge, falling to 0 across the band
    edge_cell_px: int = 3  # size of the ragged bites taken out of silhouettes
    grazing_start_deg: float = 70.0  # viewing angle at which pixels start to drop out
    grazing_full_deg: float = 85.0  # viewing angle beyond which every pixel is lost
    pixel_dropout: float = 0.0005  # isolated missing pixels, anywhere
    holes_per_frame: float = 0.5  # mean number of hole blobs on the hand (Poisson)
    hole_min_radius_px: float = 1.5
    hole_max_radius_px: float = 4.0

    def __post_init__(self) -> None:
        nonneg = ("quant_step_at_1m_mm", "noise_std_at_1m_mm", "min_range_mm", "baseline_mm",
                  "edge_jump_mm", "edge_band_px", "holes_per_frame", "hole_min_radius_px")  # fmt: skip
        for name in nonneg:
            if not getattr(self, name) >= 0:
                raise ValueError(f"SensorConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("edge_dropout", "pixel_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SensorConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not (self.noise_cell_px >= 1 and self.edge_cell_px >= 1):
            raise ValueError("SensorConfig noise_cell_px and edge_cell_px must be integers >= 1")
        if not self.max_range_mm > self.min_range_mm:
            raise ValueError(f"max_range_mm {self.max_range_mm} must exceed min_range_mm {self.min_range_mm}")
        if not 0 <= self.grazing_start_deg < self.grazing_full_deg <= 90:
            raise ValueError("need 0 <= grazing_start_deg < grazing_full_deg <= 90")
        if not self.hole_min_radius_px <= self.hole_max_radius_px:
            raise ValueError("hole_min_radius_px must be <= hole_max_radius_px")


@dataclass(frozen=True)
class SceneConfig:
    """Random surfaces behind the hand. NYU shows the subject's torso and head ~300 mm behind it.

    The default draws none: a body at least `body_gap_min_mm` behind the hand lies beyond the back
    of any crop cube (<= 300 mm, centred inside the hand), so the network input is the same with or
    without it, while drawing it costs several times the hand. `nyu_like()` draws it, over the
    whole frame, for pictures and full-frame realism.
    """

    body_prob: float = 0.0  # fraction of frames with a torso and head behind the hand
    body_gap_min_mm: float = 150.0  # from the hand's farthest point to the torso's front
    body_gap_max_mm: float = 450.0
    body_shift_max_mm: float = 250.0  # torso centre left/right of the hand, uniform
    torso_radii_mm: tuple[float, float, float] = (200.0, 320.0, 130.0)  # half width, height, depth
    head_radii_mm: tuple[float, float, float] = (80.0, 110.0, 95.0)
    # A table below the hand. Off by default: NYU has none, and a table nearer than the hand
    # would capture the nearest-blob centre detection of `preprocess`.
    table_prob: float = 0.0
    table_gap_max_mm: float = 150.0  # from the hand's lowest point down to the table
    table_tilt_max_deg: float = 30.0  # camera looking down at the table
    margin_mm: float = 150.0  # surfaces are drawn this far around the hand (see `render`)

    @classmethod
    def nyu_like(cls) -> SceneConfig:
        """A body behind every hand, drawn over the whole frame (as NYU's raw frames look)."""
        return cls(body_prob=1.0, margin_mm=math.inf)

    def __post_init__(self) -> None:
        for name in ("body_prob", "table_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SceneConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.body_gap_min_mm <= self.body_gap_max_mm:
            raise ValueError("need 0 <= body_gap_min_mm <= body_gap_max_mm")
        if min(self.torso_radii_mm + self.head_radii_mm) <= 0:
            raise ValueError("torso and head radii must be > 0 mm")


def sample_background(rng: np.random.Generator, capsules: Capsules, cfg: SceneConfig) -> Background:
    """Per frame: a torso + head ellipsoid pair behind the hand and a table plane below it, each
    present with its probability. Absent surfaces are put out of sight, where the renderer skips
    them (an ellipsoid behind the camera, a plane parallel to the image behind it); a kind absent
    from every frame is left out of the arrays."""
    start, end, radius = (np.asarray(a, dtype=np.float64) for a in capsules)
    batch = start.shape[0]
    ends = np.concatenate([start, end], axis=1)  # (B, 2K, 3)
    r2 = np.concatenate([radius, radius], axis=1)[..., None]
    lo, hi = (ends - r2).min(axis=1), (ends + r2).max(axis=1)  # (B, 3) hand bounding box
    centre = 0.5 * (lo + hi)

    torso_r, head_r = np.array(cfg.torso_radii_mm), np.array(cfg.head_radii_mm)
    gap = rng.uniform(cfg.body_gap_min_mm, cfg.body_gap_max_mm, batch)
    torso = np.stack(
        [
            centre[:, 0] + rng.uniform(-cfg.body_shift_max_mm, cfg.body_shift_max_mm, batch),
            centre[:, 1] + rng.uniform(0.0, torso_r[1], batch),
            hi[:, 2] + gap + torso_r[2],
        ],
        axis=-1,
    )
    head = torso + np.array([0.0, -(torso_r[1] + 0.9 * head_r[1]), head_r[2] - torso_r[2]])
    has_body = rng.random(batch) < cfg.body_prob
    ell_c = np.stack([torso, head], axis=1)
    ell_c[~has_body, :, 2] = -1e6  # behind the camera: skipped by the renderer
    ell_r = np.broadcast_to(np.stack([torso_r, head_r]), (batch, 2, 3)).copy()

    tilt = np.deg2rad(rng.uniform(0.0, cfg.table_tilt_max_deg, batch))
    normal = np.stack([np.zeros(batch), -np.cos(tilt), -np.sin(tilt)], axis=-1)
    on_table = np.stack(
        [centre[:, 0], hi[:, 1] + rng.uniform(0, cfg.table_gap_max_mm, batch), centre[:, 2]], -1
    )
    offset = np.einsum("bi,bi->b", normal, on_table)
    has_table = rng.random(batch) < cfg.table_prob
    normal[~has_table] = (0.0, 0.0, 1.0)
    offset[~has_table] = -1.0  # the plane z = -1 mm, behind the camera: skipped by the renderer
    kept_e, kept_p = (slice(None) if has.any() else slice(0) for has in (has_body, has_table))
    return Background(
        ell_c[:, kept_e], ell_r[:, kept_e], normal[:, None][:, kept_p], offset[:, None][:, kept_p]
    )


def simulate_depth(
    capsules: Capsules,
    cam: Intrinsics,
    rng: np.random.Generator,
    sensor: SensorConfig = SensorConfig(),
    scene: SceneConfig = SceneConfig(),
) -> np.ndarray:
    """Capsule hands -> (B, H, W) float32 sensor-like depth in mm (0 = missing): the raw frames
    that go through `crossingnets.data.preprocess` exactly like real ones."""
    return simulate(capsules, cam, rng, sensor, scene).depth_mm


def simulate(
    capsules: Capsules,
    cam: Intrinsics,
    rng: np.random.Generator,
    sensor: SensorConfig = SensorConfig(),
    scene: SceneConfig = SceneConfig(),
    windows: bool = False,
) -> Rendering:
    """`simulate_depth` as a Rendering whose depth is the sensor's; with `windows`, each frame's
    roi alone (`Rendering.window`): bitwise the same pixels, from the same `rng` draws, for the
    work of the rois."""
    background = sample_background(rng, capsules, scene)
    rendering = render(capsules, cam, background, scene.margin_mm, windows)
    return rendering._replace(depth_mm=apply_sensor(rendering, cam, sensor, rng))


def apply_sensor(
    rendering: Rendering, cam: Intrinsics, cfg: SensorConfig, rng: np.random.Generator
) -> np.ndarray:
    """Clean rendering -> float32 depth in mm with sensor effects, 0 = missing, shaped like
    `rendering.depth_mm` (whole frames or windows).

    Only `rendering.roi_px` is processed (it holds every nonzero pixel). Consumes from `rng` one
    seed per frame and the hole blobs, so it is deterministic for a given generator state.
    """
    seeds, holes = _frame_randomness(rng, rendering.hand_box_px, cfg)
    out = np.zeros_like(rendering.depth_mm)
    flat = (a.reshape(-1) for a in (rendering.depth_mm, rendering.cos_view, out))
    _sensor_batch(
        *flat, rendering.roi_px, *rendering.layout(), seeds, holes, _params(cfg, cam), _edge_cut(cfg)
    )
    return out


class _Params(NamedTuple):
    """SensorConfig as the kernels use it (numba takes named tuples of scalars)."""

    focal_baseline: float  # f * baseline, px * mm: a point at z sits on projector column u + fb / z
    z_min: float
    z_max: float
    jump_mm: float
    band: int
    edge_p: float
    edge_cell: int
    cos_start: float
    cos_full: float
    pixel_p: float
    noise_1m: float
    noise_cell: int
    disparity_mm: float  # k in z = k / n for integer disparity n; 0: no quantisation


def _params(cfg: SensorConfig, cam: Intrinsics) -> _Params:
    return _Params(
        0.5 * (cam.fx + cam.fy) * cfg.baseline_mm, cfg.min_range_mm, cfg.max_range_mm, cfg.edge_jump_mm,
        int(cfg.edge_band_px), cfg.edge_dropout, int(cfg.edge_cell_px),
        math.cos(math.radians(cfg.grazing_start_deg)), math.cos(math.radians(cfg.grazing_full_deg)),
        cfg.pixel_dropout, cfg.noise_std_at_1m_mm, int(cfg.noise_cell_px),
        1e6 / cfg.quant_step_at_1m_mm if cfg.quant_step_at_1m_mm > 0 else 0.0,
    )  # fmt: skip


def _edge_cut(cfg: SensorConfig) -> np.ndarray:
    """(band + 1,) thresholds on a N(0, 1) field: a pixel d px from an edge is lost with
    probability edge_dropout * (1 - d / (band + 1)), i.e. where the field is below Phi^-1 of that."""
    probs = cfg.edge_dropout * (1.0 - np.arange(cfg.edge_band_px + 1) / (cfg.edge_band_px + 1.0))
    return np.array([NormalDist().inv_cdf(q) if q > 0 else -np.inf for q in probs])


def _frame_randomness(
    rng: np.random.Generator, hand_box_px: np.ndarray, cfg: SensorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """One hash seed per frame (uint64) and (B, N, 3) hole blobs (u, v, radius px) inside each
    hand box; radius 0 pads unused slots."""
    batch = hand_box_px.shape[0]
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=batch, dtype=np.int64).astype(np.uint64)
    counts = rng.poisson(cfg.holes_per_frame, batch)
    holes = np.zeros((batch, max(int(counts.max(initial=0)), 1), 3))
    for b in np.nonzero(counts)[0]:
        u0, v0, u1, v1 = hand_box_px[b]
        n = counts[b]
        holes[b, :n, 0] = rng.uniform(u0, max(u1, u0 + 1), n)
        holes[b, :n, 1] = rng.uniform(v0, max(v1, v0 + 1), n)
        holes[b, :n, 2] = rng.uniform(cfg.hole_min_radius_px, cfg.hole_max_radius_px, n)
    return seeds, holes


# ---------------------------------------------------------------------------------------------
# numba kernels. Windows as in `render`: (h, w) arrays of frame pixels [u0, u0 + w) x [v0, v0 + h),
# holding every nonzero pixel of the frame. Random numbers: splitmix64 of (frame seed, effect
# channel, absolute pixel or grid cell), so a pixel's draw never depends on the window.

_NOISE, _EDGE, _PIXEL, _HOLE = 1, 2, 3, 4  # effect channels of the hash
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True)
def _mix(x):
    """splitmix64 finaliser: a bijective scramble of 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _hash(seed, channel, i, j):
    """64 random bits keyed by (seed, channel, i, j) for non-negative i, j."""
    return _mix(seed ^ _mix((np.uint64(channel) * _GOLDEN + np.uint64(i)) * _GOLDEN + np.uint64(j)))


@njit(cache=True)
def _uniform(seed, channel, i, j):
    """Uniform [0, 1) from the top 53 bits of the hash."""
    return np.float64(_hash(seed, channel, i, j) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _gauss_grid(seed, channel, u0, v0, width, height, cell, needed):
    """Approximately N(0, 1) values at the grid corners (i * cell, j * cell) around the window;
    returns the grid and the absolute index of its first corner (zeros when not `needed`)."""
    i0, j0 = u0 // cell, v0 // cell
    ni, nj = (u0 + width - 1) // cell - i0 + 2, (v0 + height - 1) // cell - j0 + 2
    grid = np.zeros((nj, ni))
    if needed:
        for j in range(nj):
            for i in range(ni):
                grid[j, i] = _gauss(seed, channel, i0 + i, j0 + j)
    return grid, i0, j0


@njit(cache=True)
def _gauss(seed, channel, i, j):
    """Approximately N(0, 1) from one hash: the sum of its four 16-bit quarters, standardised
    (Irwin-Hall, n = 4: its CDF is within ~0.01 of the normal's, at a tenth of Box-Muller's cost)."""
    h = _hash(seed, channel, i, j)
    total = 0.0
    for q in range(4):
        total += np.float64((h >> np.uint64(16 * q)) & np.uint64(0xFFFF)) + 0.5
    return (total / 65536.0 - 2.0) * math.sqrt(3.0)


@njit(cache=True)
def _bilinear_weights(cell):
    """(cell, cell, 4) weights of the four corners for each pixel offset in a cell, divided by
    sqrt(sum w^2) so the interpolated field has unit variance everywhere (a weighted sum of iid
    normals has variance sum w^2): smooth noise without a variance dip between corners."""
    out = np.empty((cell, cell, 4))
    for oy in range(cell):
        for ox in range(cell):
            fx, fy = ox / cell, oy / cell
            w = np.array([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
            out[oy, ox] = w / math.sqrt((w * w).sum())
    return out


@njit(cache=True)
def _smooth_gauss(grid, weights, i, j, ox, oy):
    """Unit-variance smooth N(0, 1) field at the pixel (ox, oy) px into grid cell (i, j); the
    caller steps these along a row, so the pixel loop holds no integer division."""
    return (
        weights[oy, ox, 0] * grid[j, i]
        + weights[oy, ox, 1] * grid[j, i + 1]
        + weights[oy, ox, 2] * grid[j + 1, i]
        + weights[oy, ox, 3] * grid[j + 1, i + 1]
    )


@njit(cache=True)
def _shadow(depth, focal_baseline, missing):
    """Mark pixels the projector cannot see. A point at (u, z) lies on projector column
    s = u + f * baseline / z; scanning away from the projector, a point is hidden when an earlier
    (nearer) point already reached a larger s."""
    height, width = depth.shape
    for i in range(height):
        reach = -np.inf
        for j in range(width):
            z = depth[i, j]
            if z <= 0.0:
                continue
            s = j + focal_baseline / z
            if reach > s + 0.25:  # quarter-pixel tolerance: smooth surfaces never shadow themselves
                missing[i, j] = True
            reach = max(reach, s)


@njit(cache=True)
def _edge_distance(depth, jump_mm, band):
    """Chebyshev distance (capped at band + 1) from each pixel to a pixel at a depth jump: a
    4-neighbour missing (outside the window counts as missing) or more than `jump_mm` away.

    Row by row: first which pixels are at a jump (no branch per pixel, so the loop vectorises),
    then only those stamp their neighbourhood."""
    height, width = depth.shape
    dist = np.full((height, width), band + 1, dtype=np.int8)
    none = np.zeros(width, np.float32)  # the missing row above the first and below the last
    pad = np.zeros(width + 2, np.float32)  # the row with a missing pixel at each end
    at_jump = np.zeros(width, np.bool_)
    for i in range(height):
        up = depth[i - 1] if i > 0 else none
        down = depth[i + 1] if i + 1 < height else none
        pad[1:-1] = depth[i]
        for j in range(width):
            z = np.float64(pad[j + 1])
            left, right = np.float64(pad[j]), np.float64(pad[j + 2])
            above, below = np.float64(up[j]), np.float64(down[j])
            jump = max(abs(left - z), abs(right - z), abs(above - z), abs(below - z))
            inside = (min(left, right, above, below) > 0.0) & (jump <= jump_mm)
            at_jump[j] = (z > 0.0) & np.logical_not(inside)
        for j in range(width):
            if at_jump[j]:
                for ii in range(max(0, i - band), min(height, i + band + 1)):
                    for jj in range(max(0, j - band), min(width, j + band + 1)):
                        dist[ii, jj] = min(dist[ii, jj], max(abs(ii - i), abs(jj - j)))
    return dist


@njit(cache=True)
def _in_hole(holes, seed, u, v):
    """Inside a hole blob, its rim roughened by up to +-40 % per pixel."""
    for h in range(holes.shape[0]):
        hu, hv, r = holes[h, 0], holes[h, 1], holes[h, 2]
        d2 = (u - hu) ** 2 + (v - hv) ** 2
        if d2 < (1.4 * r) ** 2 and d2 < (r * (0.6 + 0.8 * _uniform(seed, _HOLE, u, v))) ** 2:
            return True
    return False


@njit(cache=True)
def _sensor_frame(depth, cos_view, u0, v0, seed, holes, p, edge_cut, out):
    """Sensor effects on one window of clean depth; writes the window `out` (zero on entry).
    `edge_cut[d]`: a pixel d px from an edge is lost where the smooth N(0, 1) field is below it."""
    height, width = depth.shape
    if height == 0 or width == 0:
        return
    missing = np.zeros((height, width), dtype=np.bool_)
    if p.focal_baseline > 0.0:
        _shadow(depth, p.focal_baseline, missing)
    dist = _edge_distance(depth, p.jump_mm, p.band)
    edge_grid, ei0, ej0 = _gauss_grid(seed, _EDGE, u0, v0, width, height, p.edge_cell, p.edge_p > 0.0)
    edge_w = _bilinear_weights(p.edge_cell)
    noise_grid, ni0, nj0 = _gauss_grid(seed, _NOISE, u0, v0, width, height, p.noise_cell, p.noise_1m > 0.0)
    noise_w = _bilinear_weights(p.noise_cell)
    k = p.disparity_mm
    for i in range(height):
        v = v0 + i
        # Grid cell and offset of each field at (u0 - 1, v), stepped one pixel at the loop's top.
        e_j, e_oy, e_i, e_ox = (
            v // p.edge_cell - ej0,
            v % p.edge_cell,
            u0 // p.edge_cell - ei0,
            u0 % p.edge_cell - 1,
        )
        n_j, n_oy, n_i, n_ox = (
            v // p.noise_cell - nj0,
            v % p.noise_cell,
            u0 // p.noise_cell - ni0,
            u0 % p.noise_cell - 1,
        )
        for j in range(width):
            u = u0 + j
            e_ox += 1
            if e_ox == p.edge_cell:
                e_i, e_ox = e_i + 1, 0
            n_ox += 1
            if n_ox == p.noise_cell:
                n_i, n_ox = n_i + 1, 0
            z = depth[i, j]
            if z <= 0.0 or z < p.z_min or z > p.z_max or missing[i, j]:
                continue
            d = dist[i, j]
            if d <= p.band:  # ragged silhouettes: a smooth N(0, 1) field bites into the band
                if _smooth_gauss(edge_grid, edge_w, e_i, e_j, e_ox, e_oy) < edge_cut[d]:
                    continue
            p_graze = min(max((p.cos_start - cos_view[i, j]) / (p.cos_start - p.cos_full), 0.0), 1.0)
            if _uniform(seed, _PIXEL, u, v) < max(p_graze, p.pixel_p):
                continue
            if _in_hole(holes, seed, u, v):
                continue
            z += p.noise_1m * (z * 1e-3) ** 2 * _smooth_gauss(noise_grid, noise_w, n_i, n_j, n_ox, n_oy)
            out[i, j] = k / round(k / z) if k > 0.0 else z


@njit(parallel=True, cache=True)
def _sensor_batch(depth, cos_view, out, roi, at, shape, origin, seeds, holes, p, edge_cut):
    """Frame b's roi in its arrays, laid out as `Rendering.layout` says."""
    for b in prange(roi.shape[0]):
        u0, v0, u1, v1 = roi[b, 0], roi[b, 1], roi[b, 2], roi[b, 3]
        h, w = shape[b, 0], shape[b, 1]
        i0, j0 = v0 - origin[b, 1], u0 - origin[b, 0]
        i1, j1 = i0 + v1 - v0, j0 + u1 - u0
        frame = slice(at[b], at[b] + h * w)
        _sensor_frame(
            depth[frame].reshape((h, w))[i0:i1, j0:j1], cos_view[frame].reshape((h, w))[i0:i1, j0:j1],
            u0, v0, seeds[b], holes[b], p, edge_cut, out[frame].reshape((h, w))[i0:i1, j0:j1],
        )  # fmt: skip
