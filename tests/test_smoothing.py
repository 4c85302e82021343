"""The One Euro filter (Casiez et al., CHI 2012): against hand-computed steps and on noisy tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossingnets.smoothing import OneEuroConfig, one_euro, smoothing_factor


def test_smoothing_factor_is_the_papers_alpha():
    # alpha = 1 / (1 + tau / T_e), tau = 1 / (2 pi f_c): at f_c = 1 Hz, 30 Hz
    assert smoothing_factor(1.0, 30.0) == pytest.approx(1 / (1 + 30 / (2 * math.pi)))
    assert smoothing_factor(1e9, 30.0) == pytest.approx(1.0)


def test_first_steps_by_hand():
    cfg = OneEuroConfig(rate_hz=10.0, min_cutoff_hz=1.0, beta=0.5, d_cutoff_hz=2.0)
    x = np.array([[0.0], [1.0], [3.0]])
    out = one_euro(x, cfg)
    a_d = 1 / (1 + 10 / (2 * math.pi * 2.0))
    dx1 = a_d * (1.0 - 0.0) * 10
    y1 = 0.0 + (1 / (1 + 10 / (2 * math.pi * (1.0 + 0.5 * dx1)))) * 1.0
    dx2 = dx1 + a_d * ((3.0 - y1) * 10 - dx1)
    y2 = y1 + (1 / (1 + 10 / (2 * math.pi * (1.0 + 0.5 * dx2)))) * (3.0 - y1)
    np.testing.assert_allclose(out[:, 0], [0.0, y1, y2])


def test_constant_tracks_pass_and_beta_zero_is_a_plain_low_pass():
    still = np.tile([[10.0, -5.0, 600.0]], (20, 1))
    np.testing.assert_allclose(one_euro(still[:, None]), still[:, None])
    x = np.random.default_rng(0).normal(size=(50, 1))
    out = one_euro(x, OneEuroConfig(rate_hz=30.0, min_cutoff_hz=2.0, beta=0.0))
    alpha, expected = smoothing_factor(2.0, 30.0), [x[0, 0]]
    for value in x[1:, 0]:
        expected.append(expected[-1] + alpha * (value - expected[-1]))
    np.testing.assert_allclose(out[:, 0], expected)


def test_jitter_is_removed_at_rest_and_fast_moves_keep_little_lag():
    rng = np.random.default_rng(1)
    t = np.arange(120) / 30.0
    noise = rng.normal(0, 3.0, (120, 14, 3))  # mm, per joint
    at_rest = one_euro(600.0 + noise)
    assert np.std(at_rest[30:] - 600.0) < 0.4 * np.std(noise)
    # a joint moving at 600 mm/s: the speed raises the cutoff, so the lag is far below a low-pass's
    moving = np.zeros((120, 1, 3))
    moving[:, 0, 0] = 600.0 * t
    lag_euro = np.abs(one_euro(moving)[60:, 0, 0] - moving[60:, 0, 0]).mean()
    lag_plain = np.abs(one_euro(moving, OneEuroConfig(beta=0.0))[60:, 0, 0] - moving[60:, 0, 0]).mean()
    assert lag_euro < 0.15 * lag_plain and lag_plain > 50  # 9.7 against 95 mm


def test_the_speed_is_per_joint_and_rotation_invariant():
    rng = np.random.default_rng(2)
    track = np.cumsum(rng.normal(0, 5, (40, 2, 3)), axis=0)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    np.testing.assert_allclose(one_euro(track @ rotation.T), one_euro(track) @ rotation.T, atol=1e-9)
    # a joint's filtering does not depend on another joint's speed
    fast = track.copy()
    fast[:, 1] *= 50
    np.testing.assert_allclose(one_euro(fast)[:, 0], one_euro(track)[:, 0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_hz": 0.0}, "rate_hz must be > 0"),
        ({"min_cutoff_hz": -1.0}, "min_cutoff_hz"),
        ({"beta": -0.1}, "beta"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OneEuroConfig(**kwargs)


def test_bad_tracks():
    with pytest.raises(ValueError, match="scalar track"):
        one_euro(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        one_euro(np.array([[0.0], [np.nan]]))
