"""What a latent point is made of: its nearest training frames in the explorer index.

Distances are Euclidean in the latent itself, the unit of the walk tab's steps and of L_smo.
(Whitened distances, in standard deviations per principal direction, let the 20-odd directions
of least variance outvote the few that carry the pose: their nearest frames look unrelated.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from crossingnets.explorer.figures import crop_to_mm, depth_picture, depth_range_mm
from crossingnets.explorer.index import ExplorerIndex, crops_from_thumbnails


@dataclass(frozen=True)
class Neighbours:
    rows: np.ndarray  # (k,) rows of the index, nearest first
    distances: np.ndarray  # (k,) latent distances


def nearest_frames(index: ExplorerIndex, z: np.ndarray, k: int) -> Neighbours:
    """The k index frames whose latents lie nearest z (L,)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    d = np.linalg.norm(index.latents - np.asarray(z, np.float64), axis=1)
    rows = np.argsort(d, kind="stable")[:k]
    return Neighbours(rows=rows, distances=d[rows])


def thumbnail(index: ExplorerIndex, row: int, scale: int = 2) -> Image.Image:
    """Frame `row` of the index in the depth colours (its own range), `scale` times larger."""
    depth = crop_to_mm(crops_from_thumbnails(index.thumbs[row]), index.cube_mm)
    return depth_picture(depth, *depth_range_mm(depth), scale, bar=False)


def caption(index: ExplorerIndex, row: int, distance: float) -> str:
    return f"{distance:.2f} · #{int(index.frames[row])}"
