"""The window path of the renderer, sensor and synthetic frames: bitwise the pixels and crops of
the full-frame path, from the same random draws, for every scene kind."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossingnets.camera import CAMERAS
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.data.synthetic import GenerateConfig, render_batch, to_network_input
from crossingnets.hand.conventions import get_convention
from crossingnets.hand.kinematics import hand_capsules
from crossingnets.hand.render import Background, render
from crossingnets.hand.sampler import sample_hands
from crossingnets.hand.sensor import SceneConfig, sample_background, simulate, simulate_depth

NYU = CAMERAS["nyu"]
SCENES = {
    "hand alone": SceneConfig(),
    "body and table": SceneConfig(body_prob=0.6, table_prob=0.4),
    "nyu-like, whole frame": SceneConfig.nyu_like(),
}


def hands(n: int = 6, seed: int = 3):
    return hand_capsules(*sample_hands(np.random.default_rng(seed), n, NYU))


def unpacked(sensed, array: np.ndarray) -> np.ndarray:
    """Windows (packed) -> (B, H, W) frames, 0 outside each window."""
    frames = np.zeros((len(sensed.roi_px), NYU.height_px, NYU.width_px), array.dtype)
    for b, (u0, v0, u1, v1) in enumerate(sensed.roi_px):
        frames[b, v0:v1, u0:u1] = sensed.window(array, b)
    return frames


@pytest.mark.parametrize("scene", list(SCENES.values()), ids=list(SCENES))
def test_windows_render_the_frames_pixels(scene: SceneConfig) -> None:
    caps = hands()
    background = sample_background(np.random.default_rng(1), caps, scene)
    full = render(caps, NYU, background, scene.margin_mm)
    win = render(caps, NYU, background, scene.margin_mm, windows=True)
    assert win.depth_mm.ndim == 1 and full.window_start is None
    np.testing.assert_array_equal(unpacked(win, win.depth_mm), full.depth_mm)
    np.testing.assert_array_equal(unpacked(win, win.cos_view), full.cos_view)
    np.testing.assert_array_equal(win.roi_px, full.roi_px)
    for b in range(len(caps.radius_mm)):  # the window view of whole frames is the same roi
        np.testing.assert_array_equal(full.window(full.depth_mm, b), win.window(win.depth_mm, b))


@pytest.mark.parametrize("scene", list(SCENES.values()), ids=list(SCENES))
def test_sensed_windows_are_the_sensed_frames_from_the_same_draws(scene: SceneConfig) -> None:
    caps = hands()
    rng_full, rng_win = np.random.default_rng(8), np.random.default_rng(8)
    full = simulate_depth(caps, NYU, rng_full, scene=scene)
    win = simulate(caps, NYU, rng_win, scene=scene, windows=True)
    np.testing.assert_array_equal(unpacked(win, win.depth_mm), full)
    assert rng_full.random() == rng_win.random()  # the same draws, so the streams go on alike
    assert (full > 0).sum() > 1000


def test_window_crops_equal_full_frame_crops() -> None:
    """What `generate` stores: crops and centres through the window path, frame for frame."""
    cfg = GenerateConfig(crop_px=64, cube_mm=300.0, batch_frames=8)
    conv = get_convention("nyu")
    full = to_network_input(render_batch(np.random.default_rng(4), 8, conv, NYU, cfg), NYU, cfg.crop())
    win = to_network_input(
        render_batch(np.random.default_rng(4), 8, conv, NYU, cfg, windows=True), NYU, cfg.crop()
    )
    assert full is not None and win is not None and len(full["depth"]) == 8
    for k in full:
        np.testing.assert_array_equal(win[k], full[k])


def test_empty_and_off_frame_hands() -> None:
    """A hand wholly outside the image has an empty window; it crops to nothing either way."""
    caps = hands(2)
    caps = caps._replace(start_mm=caps.start_mm.copy(), end_mm=caps.end_mm.copy())
    caps.start_mm[1, :, 0] += 5000.0  # far to the right of the frame
    caps.end_mm[1, :, 0] += 5000.0
    win = render(caps, NYU, windows=True)
    assert win.window(win.depth_mm, 1).size == 0
    full = render(caps, NYU)
    np.testing.assert_array_equal(unpacked(win, win.depth_mm), full.depth_mm)
    with pytest.raises(ValueError, match="empty"):
        preprocess(win.window(win.depth_mm, 1), NYU, CropConfig(), origin_px=tuple(win.roi_px[1, :2]))


def test_whole_frame_margin_gives_whole_frame_windows() -> None:
    caps = hands(2)
    bg = Background(
        np.zeros((2, 0, 3)), np.zeros((2, 0, 3)), np.array([[[0.0, 0.0, 1.0]]] * 2), np.array([[1500.0]] * 2)
    )
    win = render(caps, NYU, bg, math.inf, windows=True)
    assert win.depth_mm.size == 2 * NYU.height_px * NYU.width_px
    assert (win.depth_mm > 0).all()  # the wall fills every pixel
