"""Sensor effects: each one isolated on hand-made renderings, then the whole chain."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from crossingnets.camera import CAMERAS
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.render import Rendering, render
from crossingnets.hand.sensor import (
    SceneConfig,
    SensorConfig,
    apply_sensor,
    sample_background,
    simulate_depth,
)

NYU = CAMERAS["nyu"]
# Every effect off; each test switches on the one it checks.
CLEAN = SensorConfig(
    quant_step_at_1m_mm=0.0, noise_std_at_1m_mm=0.0, min_range_mm=0.0, max_range_mm=1e5,
    baseline_mm=0.0, edge_dropout=0.0, grazing_start_deg=89.0, grazing_full_deg=90.0,
    pixel_dropout=0.0, holes_per_frame=0.0,
)  # fmt: skip


def flat(depth_mm: np.ndarray, cos: float = 1.0) -> Rendering:
    """A rendering of the given (B, H, W) depth seen head-on; the window is the whole frame."""
    depth = np.asarray(depth_mm, np.float32)
    b, h, w = depth.shape
    box = np.tile(np.array([0, 0, w, h], np.int32), (b, 1))
    return Rendering(depth, np.full_like(depth, cos), box, box)


def square(size: int = 64, inner: float = 700.0, outer: float = 0.0, n: int = 1) -> np.ndarray:
    """(n, 120, 160) frames: a square of depth `inner` centred on `outer`."""
    depth = np.full((n, 120, 160), outer, np.float32)
    depth[:, 60 - size // 2 : 60 + size // 2, 80 - size // 2 : 80 + size // 2] = inner
    return depth


def sensed(depth: np.ndarray, seed: int = 0, **changes) -> np.ndarray:
    return apply_sensor(flat(depth), NYU, dataclasses.replace(CLEAN, **changes), np.random.default_rng(seed))


def test_clean_config_is_identity() -> None:
    depth = square()
    np.testing.assert_array_equal(sensed(depth), depth)


def test_default_sensor_is_deterministic_per_seed() -> None:
    depth = square(outer=1100.0, n=2)
    cfg = SensorConfig()
    a = apply_sensor(flat(depth), NYU, cfg, np.random.default_rng(7))
    b = apply_sensor(flat(depth), NYU, cfg, np.random.default_rng(7))
    c = apply_sensor(flat(depth), NYU, cfg, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # frames get their own noise


def test_quantisation_steps_grow_with_depth_squared() -> None:
    ramp = np.linspace(600.0, 1600.0, 120 * 160, dtype=np.float32)
    out = sensed(ramp.reshape(1, 120, 160), quant_step_at_1m_mm=3.0).ravel()
    k = 1e6 / 3.0  # depth k / n for integer disparity n: the step at 1 m is 3 mm
    np.testing.assert_allclose(k / out, np.round(k / out), atol=1e-3)
    assert np.abs(out - ramp).max() <= 0.5 * 3.0 * 1.6**2 + 1e-3
    levels = np.unique(out)
    mids = 0.5 * (levels[1:] + levels[:-1])
    np.testing.assert_allclose(np.diff(levels), 3.0 * (mids / 1000) ** 2, rtol=0.01)


@pytest.mark.parametrize("z", [600.0, 1200.0])
def test_noise_std_grows_with_depth_squared(z: float) -> None:
    depth = np.full((4, 120, 160), z, np.float32)
    out = sensed(depth, noise_std_at_1m_mm=1.4)
    assert (out > 0).all()
    assert np.std(out - z) == pytest.approx(1.4 * (z / 1000) ** 2, rel=0.1)
    assert abs(np.mean(out - z)) < 0.1 * 1.4 * (z / 1000) ** 2


def test_edge_pixels_drop_and_interior_survives() -> None:
    depth = square(size=64, n=8)  # the square spans rows 28..91, columns 48..111
    out = sensed(depth, edge_dropout=0.8, edge_band_px=2)
    lost = (depth > 0) & (out == 0)

    def ring(d: int) -> np.ndarray:
        """Pixels exactly d pixels inside the square's border."""
        inside = np.zeros_like(lost)
        inside[:, 28 + d : 92 - d, 48 + d : 112 - d] = True
        inside[:, 29 + d : 91 - d, 49 + d : 111 - d] = False
        return inside

    rates = [lost[ring(d)].mean() for d in range(4)]
    assert rates[0] > 0.4 and rates[0] > rates[1] > rates[2] > 0  # ragged bites, deepest at the edge
    core = np.zeros_like(lost)
    core[:, 31:89, 51:109] = True
    assert not lost[core].any()  # beyond the 2-pixel band nothing is lost


def test_grazing_pixels_drop() -> None:
    depth = np.full((1, 60, 80), 800.0, np.float32)
    cfg = dataclasses.replace(CLEAN, grazing_start_deg=70.0, grazing_full_deg=85.0)
    for cos, kept in [(np.cos(np.radians(50)), 1.0), (np.cos(np.radians(87)), 0.0)]:
        out = apply_sensor(flat(depth, cos), NYU, cfg, np.random.default_rng(0))
        assert (out > 0).mean() == kept
    half = apply_sensor(flat(depth, np.cos(np.radians(77.5))), NYU, cfg, np.random.default_rng(0))
    assert 0.3 < (half > 0).mean() < 0.7


def test_projector_shadow_falls_beside_the_hand() -> None:
    """A square at 700 mm before a wall at 1000 mm: the projector (75 mm along +u) cannot light a
    band of f * b * (1/700 - 1/1000) pixels on the wall just right of the square, and nothing left."""
    depth = square(size=40, inner=700.0, outer=1000.0)
    out = sensed(depth, baseline_mm=75.0)[0]
    f = 0.5 * (NYU.fx + NYU.fy)
    width = f * 75.0 * (1 / 700 - 1 / 1000)
    row = out[60]
    missing = np.nonzero(row == 0)[0]
    assert missing.min() == 100  # the square spans columns 60..99
    assert len(missing) == pytest.approx(width, abs=1.0)
    assert (out[:, :60] > 0).all() and (out[40:80, 60:100] == 700).all()


def test_range_limits() -> None:
    depth = np.array([[[200.0, 500.0, 1500.0, 2500.0]]], np.float32)
    out = sensed(depth, min_range_mm=250.0, max_range_mm=2000.0)
    np.testing.assert_array_equal(out, [[[0.0, 500.0, 1500.0, 0.0]]])


def test_holes_land_on_the_hand() -> None:
    depth = square(size=64, n=16)
    out = sensed(depth, holes_per_frame=3.0, hole_min_radius_px=3.0, hole_max_radius_px=4.0)
    lost = (depth > 0) & (out == 0)
    assert 0 < lost.sum() < 0.2 * (depth > 0).sum()


@pytest.mark.parametrize("field", ["edge_dropout", "pixel_dropout", "body_prob"])
def test_bad_probabilities_raise(field: str) -> None:
    config = SceneConfig if field == "body_prob" else SensorConfig
    with pytest.raises(ValueError, match=field):
        config(**{field: 1.5})


def test_simulated_hand_in_front_of_a_body() -> None:
    """A capsule 'arm' at 600 mm: the torso appears behind it, shadows beside it, all deterministic."""
    caps = Capsules(
        np.array([[[-60.0, 0.0, 600.0], [0.0, -60.0, 600.0]]], np.float32),
        np.array([[[60.0, 0.0, 610.0], [0.0, 60.0, 590.0]]], np.float32),
        np.array([[20.0, 10.0]], np.float32),
    )
    scene = SceneConfig(body_prob=1.0, body_shift_max_mm=0.0)
    a = simulate_depth(caps, NYU, np.random.default_rng(3), scene=scene)
    b = simulate_depth(caps, NYU, np.random.default_rng(3), scene=scene)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1, 480, 640)
    near = a[0][(a[0] > 0) & (a[0] < 700)]
    far = a[0][a[0] > 700]
    assert near.size > 1000 and far.size > 3 * near.size  # the torso fills the window
    bg = sample_background(np.random.default_rng(3), caps, scene)
    assert (bg.ellipsoid_center_mm[0, :, 2] - bg.ellipsoid_radii_mm[0, :, 2] >= 630.0 + 150.0 - 1e-6).all()


def test_simulation_is_background_then_render_then_sensor() -> None:
    caps = Capsules(
        np.array([[[-60.0, 0.0, 600.0]], [[20.0, 30.0, 450.0]]], np.float32),
        np.array([[[60.0, 10.0, 610.0]], [[40.0, -50.0, 480.0]]], np.float32),
        np.array([[20.0], [12.0]], np.float32),
    )
    scene = SceneConfig(body_prob=0.5, table_prob=0.5)
    simulated = simulate_depth(caps, NYU, np.random.default_rng(5), scene=scene)
    rng = np.random.default_rng(5)
    background = sample_background(rng, caps, scene)
    staged = apply_sensor(render(caps, NYU, background, scene.margin_mm), NYU, SensorConfig(), rng)
    np.testing.assert_array_equal(simulated, staged)


def test_nyu_like_scene_fills_the_frame_behind_the_hand() -> None:
    caps = Capsules(np.array([[[0.0, 0.0, 600.0]]], np.float32), np.array([[[0.0, 60.0, 600.0]]], np.float32),
                    np.array([[25.0]], np.float32))  # fmt: skip
    default = simulate_depth(caps, NYU, np.random.default_rng(0))
    nyu = simulate_depth(caps, NYU, np.random.default_rng(0), scene=SceneConfig.nyu_like())
    assert (default > 700).sum() == 0  # the default scene is the hand alone
    assert (nyu > 700).sum() > 5 * ((nyu > 0) & (nyu < 700)).sum()  # a torso, beyond the crop
