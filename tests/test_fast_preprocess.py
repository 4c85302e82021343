"""The tiled preprocessing gives bitwise the crops and centres of the full-frame algorithm it
replaced, restated here in plain numpy as the oracle: on the real NYU frame, the app's frames,
rendered frames, and edge cases (hand at the border, nothing in range, odd frame sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data.depth_file import load_depth
from crossingnets.data.preprocess import (
    BACKGROUND,
    CropConfig,
    NoHandError,
    crop_depth,
    crop_to_uvd,
    detect_center,
    preprocess,
)
from crossingnets.hand.kinematics import hand_capsules
from crossingnets.hand.sampler import sample_hands
from crossingnets.hand.sensor import SceneConfig, simulate_depth

NYU = CAMERAS["nyu"]
FRAME = Path(__file__).resolve().parents[1] / "app" / "examples" / "synthetic_nyu_0.png"
CONFIGS = [CropConfig(cube_mm=300.0, crop_px=64), CropConfig(cube_mm=250.0, crop_px=128)]


def oracle_center(depth: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray | None:
    """The full-frame centre of mass: nearest valid depth d0, candidates within half a cube behind
    it in row-major order, refined inside the cube (numpy; None when nothing is in range)."""
    valid = (depth > 0) & (depth < cfg.max_depth_mm)
    if not valid.any():
        return None
    band = float(depth[valid].min()) + 0.5 * cfg.cube_mm
    v, u = np.nonzero(valid & (depth <= band))
    uvd = np.stack([u, v, depth[v, u]], axis=1).astype(np.float64)
    com = uvd.sum(axis=0) / len(uvd)
    for _ in range(cfg.center_iterations):
        half = np.array(
            [0.5 * cfg.cube_mm * cam.fx / com[2], 0.5 * cfg.cube_mm * cam.fy / com[2], 0.5 * cfg.cube_mm]
        )
        inside = (np.abs(uvd - com) <= half).all(axis=1)
        if not inside.any():
            break
        new = uvd[inside].sum(axis=0) / inside.sum()
        if np.abs(new - com).max() <= 1e-3:
            break
        com = new
    return com


def oracle_crop(depth: np.ndarray, com: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> np.ndarray:
    """Nearest-neighbour resampling of the cube's window, normalised, background +1 (numpy)."""
    s = cfg.crop_px
    grid = np.arange(s, dtype=np.float64)
    src = crop_to_uvd(np.stack([grid, grid, np.zeros(s)], axis=-1), com, cam, cfg)
    cols, rows = np.rint(src[:, 0]).astype(np.int64), np.rint(src[:, 1]).astype(np.int64)
    col_ok, row_ok = (cols >= 0) & (cols < depth.shape[1]), (rows >= 0) & (rows < depth.shape[0])
    patch = np.zeros((s, s), dtype=np.float32)
    patch[np.ix_(row_ok, col_ok)] = depth[np.ix_(rows[row_ok], cols[col_ok])]
    out = (patch - np.float32(com[2])) / np.float32(0.5 * cfg.cube_mm)
    out[(patch <= 0) | (out > 1)] = BACKGROUND
    return np.clip(out, -1.0, 1.0)


def assert_same_as_oracle(depth: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> None:
    com = oracle_center(depth.astype(np.float32), cam, cfg)
    if com is None:
        with pytest.raises(NoHandError):
            preprocess(depth, cam, cfg)
        return
    expected = oracle_crop(depth.astype(np.float32), com, cam, cfg)
    if (expected >= BACKGROUND).all():
        with pytest.raises(NoHandError, match="holds no depth pixel"):
            preprocess(depth, cam, cfg)
        return
    got = preprocess(depth, cam, cfg)
    np.testing.assert_array_equal(got.com_uvd, com)
    np.testing.assert_array_equal(got.depth, expected)


def rendered_frames(n: int, scene: SceneConfig) -> np.ndarray:
    rng = np.random.default_rng(14)
    return simulate_depth(hand_capsules(*sample_hands(rng, n, NYU)), NYU, rng, scene=scene)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.crop_px}px")
def test_real_nyu_frame(shared_data, cfg: CropConfig) -> None:
    depth = load_depth(shared_data / "depth_samples" / "nyu" / "depth_1_0000001.png")
    assert_same_as_oracle(depth, NYU, cfg)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.crop_px}px")
def test_app_frame_and_rendered_frames(cfg: CropConfig) -> None:
    frames = [
        load_depth(FRAME),
        *rendered_frames(6, SceneConfig()),
        *rendered_frames(3, SceneConfig.nyu_like()),
    ]
    for depth in frames:
        assert_same_as_oracle(depth, NYU, cfg)


def box(shape: tuple[int, int], rows: slice, cols: slice, depth_mm: float = 600.0) -> np.ndarray:
    frame = np.zeros(shape, np.float32)
    frame[rows, cols] = depth_mm
    return frame


@pytest.mark.parametrize(
    "frame",
    [
        box((480, 640), slice(0, 40), slice(0, 30)),  # hand in the top-left corner
        box((480, 640), slice(430, 480), slice(600, 640)),  # bottom-right corner
        box((480, 640), slice(200, 260), slice(620, 640), 450.0),  # cut by the right border
        np.zeros((480, 640), np.float32),  # nothing at all
        np.full((480, 640), 2500.0, np.float32),  # everything beyond the sensor range
        box((77, 101), slice(10, 50), slice(40, 99), 700.0),  # sizes not a multiple of the tile
        box((1, 1), slice(0, 1), slice(0, 1)),
    ],
    ids=["top-left", "bottom-right", "right-border", "empty", "out-of-range", "odd-size", "one-pixel"],
)
def test_edge_cases(frame: np.ndarray) -> None:
    for cfg in CONFIGS:
        assert_same_as_oracle(frame, NYU, cfg)


def test_a_nearer_speck_and_a_wall_decide_like_the_oracle(rng: np.random.Generator) -> None:
    """A lone near pixel moves d0 (hence the band) and a wall adds far pixels; ragged depths."""
    frame = box((480, 640), slice(150, 300), slice(250, 380), 620.0)
    frame += rng.uniform(-30, 30, frame.shape).astype(np.float32) * (frame > 0)
    frame[:, :120] = 1400.0
    frame[470, 5] = 400.0
    for cfg in CONFIGS:
        assert_same_as_oracle(frame, NYU, cfg)


def test_other_dtypes_and_negative_zero() -> None:
    frame = box((480, 640), slice(200, 260), slice(300, 350))
    expected = preprocess(frame, NYU, CONFIGS[0])
    for other in (frame.astype(np.uint16), frame.astype(np.float64), np.where(frame > 0, frame, -0.0)):
        got = preprocess(other, NYU, CONFIGS[0])
        np.testing.assert_array_equal(got.depth, expected.depth)
        np.testing.assert_array_equal(got.com_uvd, expected.com_uvd)


@pytest.mark.parametrize("value, match", [(np.inf, "NaN or infinite"), (-3.0, "negative")])
def test_one_bad_pixel_anywhere_is_found(value: float, match: str) -> None:
    frame = box((480, 640), slice(200, 260), slice(300, 350))
    frame[479, 639] = value
    with pytest.raises(ValueError, match=match):
        preprocess(frame, NYU, CONFIGS[0])
    with pytest.raises(ValueError, match=match):
        detect_center(frame, NYU, CONFIGS[0])


def test_window_gives_the_full_frame_crop() -> None:
    """A window holding every nonzero pixel crops like the zero-padded frame, even where the cube
    reaches past the window and past the frame."""
    full = rendered_frames(4, SceneConfig())
    for depth in full:
        v, u = np.nonzero(depth)
        u0, v0, u1, v1 = u.min() - 3, v.min() - 2, u.max() + 1, v.max() + 1
        window = depth[v0:v1, u0:u1]
        for cfg in CONFIGS:
            a, b = preprocess(depth, NYU, cfg), preprocess(window, NYU, cfg, origin_px=(u0, v0))
            np.testing.assert_array_equal(a.com_uvd, b.com_uvd)
            np.testing.assert_array_equal(a.depth, b.depth)
            np.testing.assert_array_equal(detect_center(window, NYU, cfg, (u0, v0)), a.com_uvd)
            np.testing.assert_array_equal(crop_depth(window, a.com_uvd, NYU, cfg, (u0, v0)), a.depth)
            given = preprocess(window, NYU, cfg, a.com_uvd + [40.0, -30.0, 20.0], (u0, v0))
            np.testing.assert_array_equal(
                given.depth, preprocess(depth, NYU, cfg, a.com_uvd + [40.0, -30.0, 20.0]).depth
            )
    with pytest.raises(ValueError, match="leaves the 640x480 frame"):
        preprocess(np.ones((10, 10), np.float32), NYU, CONFIGS[0], origin_px=(635, 0))
