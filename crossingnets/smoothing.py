"""Temporal smoothing of joint tracks: the One Euro filter (Casiez, Roussel and Vogel, "1 Euro Filter:
A Simple Speed-based Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012).

A first-order low-pass whose cutoff rises with the signal's speed: at rest a low cutoff removes
jitter, in fast motion a high one removes lag. Our implementation, after the paper's equations:
for sampling period T_e, alpha(f_c) = 1 / (1 + tau / T_e) with tau = 1 / (2 pi f_c);
the speed dx_i = (x_i - xhat_{i-1}) / T_e is low-passed at `d_cutoff_hz`, and
f_c = min_cutoff_hz + beta * |dxhat_i|. For 3-D joints the speed is the norm of each joint's
velocity (mm/s), so the filter does not depend on the camera's axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    rate_hz: float = 30.0  # frames per second of the sequence (most depth sensors: 30)
    min_cutoff_hz: float = 1.0  # cutoff at rest: lower removes more jitter, with more lag
    beta: float = 0.01  # cutoff increase per mm/s of joint speed (1/mm): higher follows fast moves
    d_cutoff_hz: float = 1.0  # cutoff of the speed estimate (the paper's default)

    def __post_init__(self) -> None:
        positive = {
            "rate_hz": self.rate_hz,
            "min_cutoff_hz": self.min_cutoff_hz,
            "d_cutoff_hz": self.d_cutoff_hz,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"One Euro filter: {name} must be > 0, got {value}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"One Euro filter: beta must be >= 0, got {self.beta}")


def smoothing_factor(cutoff_hz: np.ndarray | float, rate_hz: float) -> np.ndarray:
    """alpha of a first-order low-pass at `cutoff_hz` sampled at `rate_hz`: 1 / (1 + tau / T_e)."""
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff_hz, np.float64))
    return 1.0 / (1.0 + tau * rate_hz)


def one_euro(signal: np.ndarray, cfg: OneEuroConfig = OneEuroConfig()) -> np.ndarray:
    """Filter a track (T, ..., C) along its first axis (T samples at `cfg.rate_hz`); the speed that
    sets each point's cutoff is the norm over its last axis C (a joint's xyz). Returns float64
    (T, ..., C); the first sample passes unchanged."""
    x = np.asarray(signal, np.float64)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(
            f"a track to smooth is (T, ..., C) with T >= 1 (a scalar track: (T, 1)), got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("a track to smooth holds NaN or infinite values")
    out = np.empty_like(x)
    out[0] = x[0]
    speed = np.zeros_like(x[0])
    alpha_d = smoothing_factor(cfg.d_cutoff_hz, cfg.rate_hz)
    for i in range(1, len(x)):
        speed = speed + alpha_d * ((x[i] - out[i - 1]) * cfg.rate_hz - speed)
        cutoff = cfg.min_cutoff_hz + cfg.beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        out[i] = out[i - 1] + smoothing_factor(cutoff, cfg.rate_hz) * (x[i] - out[i - 1])
    return out
