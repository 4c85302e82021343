"""Capsules: the hand's geometry as the renderer and the mesh exporter see it.

A capsule is the set of points within `radius_mm` of the segment start -> end (a sphere when
start == end). Camera frame, mm (x right, y down, z forward).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Capsules(NamedTuple):
    start_mm: np.ndarray  # (B, K, 3) float32
    end_mm: np.ndarray  # (B, K, 3) float32
    radius_mm: np.ndarray  # (B, K) float32

    def frame(self, b: int) -> Capsules:
        """The capsules of one hand, keeping a batch axis of 1."""
        return Capsules(self.start_mm[b : b + 1], self.end_mm[b : b + 1], self.radius_mm[b : b + 1])
