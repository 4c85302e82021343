"""Principal component analysis: of poses (the pose layers' initialisation, DeepPrior's prior) and
of a trained model's latents (`LatentStats`, released beside its weights for the latent-space
explorer)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crossingnets.files import atomic_output

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


def fit_pca(data: np.ndarray, max_components: int) -> PCA:
    """A scikit-learn PCA of the rows of data (N, D), min(max_components, N, D) components."""
    from sklearn.decomposition import PCA  # imported here: it takes seconds, only fitting needs it

    data = np.asarray(data, dtype=np.float64)
    return PCA(n_components=min(max_components, *data.shape), svd_solver="full").fit(data)


@dataclass(frozen=True)
class LatentStats:
    """Statistics of the training latents (N, L) that the latent-space explorer needs."""

    components: np.ndarray  # (K, L) principal axes (scikit-learn PCA), unit rows
    mean: np.ndarray  # (L,) mean latent
    explained_variance: np.ndarray  # (K,) variance along each axis
    explained_variance_ratio: np.ndarray  # (K,) fraction of the total variance per axis
    std: np.ndarray  # (L,) per-dimension standard deviation of the latents
    min: np.ndarray  # (L,) per-dimension minimum
    max: np.ndarray  # (L,) per-dimension maximum

    @classmethod
    def fit(cls, latents: np.ndarray, n_components: int | None = None) -> LatentStats:
        latents = np.asarray(latents, dtype=np.float64)
        pca = fit_pca(latents, n_components or latents.shape[1])
        return cls(
            components=pca.components_,
            mean=pca.mean_,
            explained_variance=pca.explained_variance_,
            explained_variance_ratio=pca.explained_variance_ratio_,
            std=latents.std(axis=0),
            min=latents.min(axis=0),
            max=latents.max(axis=0),
        )

    def save(self, path: str | os.PathLike) -> None:
        tensors = {
            f.name: torch.as_tensor(np.ascontiguousarray(getattr(self, f.name), np.float32))
            for f in fields(self)
        }
        with atomic_output(path) as tmp:
            save_file(tensors, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatentStats:
        t = load_file(path)
        return cls(**{f.name: t[f.name].numpy() for f in fields(cls)})
