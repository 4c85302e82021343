"""In-plane rotations of crops and of the joints in them: training augmentation and test-time
rotation averaging.

A crop turned about its centre shows the hand turned about the viewing ray through the crop centre,
so joints relative to that centre turn about the camera's z axis (exact on the optical axis, close
to it within a 300 mm cube); depth values do not change. Training on turned crops (`rotate_deg` in
TrainConfig) shows the network more orientations than the renderer drew. At test time, the
estimates on several turned copies of a crop, each turned back, are averaged: their errors are
partly independent. On the bundled model (r3), 9 angles 10 deg apart lower the synthetic test's
mean joint error from 16.1 to 15.1 mm and the independent renderer's from 27.5 to 26.3
(BENCHMARKS.md), for 9 network passes per frame.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

STEP_DEG = 10.0  # between neighbouring test-time angles; 9 span +-40 deg


def rotation_angles_deg(count: int) -> np.ndarray:
    """`count` (odd, >= 1) test-time angles STEP_DEG apart, centred on 0: 0 first, then +-STEP, ..."""
    if count < 1 or count % 2 == 0:
        raise ValueError(f"test-time rotations must be an odd count >= 1, got {count}")
    steps = np.arange(1, count // 2 + 1)
    return np.concatenate([[0.0], np.stack([steps, -steps], 1).ravel()]) * STEP_DEG


def turn_crops(crops: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """Crops (B, 1, S, S) in [-1, 1] (background +1), each turned by its angle (B,) counter-clockwise
    as seen in the image (u right, v down). Nearest-neighbour sampling, so no depth is invented
    between hand and background; corners turned in from outside are background."""
    a = torch.deg2rad(angles_deg.to(crops.dtype))
    c, s, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
    theta = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    turned = F.grid_sample(crops - 1.0, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return turned + 1.0


def turn_index_maps(size: int, angles_deg: np.ndarray) -> np.ndarray:
    """For crops of `size` px turned by each angle (K,), the flat index (K, size * size) of the
    source pixel every pixel samples, -1 outside: `turn_crops` as a gather, for fixed angles
    (inference), without a sampling grid per call or the threads torch would start for it."""
    index = torch.arange(size * size, dtype=torch.float64).reshape(1, 1, size, size) + 2.0  # >= 2
    angles = torch.as_tensor(np.asarray(angles_deg, np.float64))
    turned = turn_crops(index.expand(len(angles), 1, size, size), angles)  # outside -> 1
    return (turned.reshape(len(angles), -1).round().long() - 2).numpy()


def turn_points(points: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """Points (B, ..., 3) relative to the crop centre (x right, y down) -> where they lie in the
    crops `turn_crops` turned by angles (B,). Turning back is turning by the opposite angles."""
    a = torch.deg2rad(angles_deg.to(points.dtype)).reshape(-1, *([1] * (points.dim() - 2)))
    c, s = torch.cos(a), torch.sin(a)
    x, y = points[..., 0], points[..., 1]
    return torch.stack([c * x + s * y, c * y - s * x, points[..., 2]], -1)
