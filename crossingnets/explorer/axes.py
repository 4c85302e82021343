"""The principal directions of the training latents as coordinates: the PCA sliders' values and
the whitened units (standard deviations of the training latents) the named sliders move in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossingnets.checkpoint import LatentStats


@dataclass(frozen=True)
class LatentAxes:
    """The principal directions of the training latents, as slider coordinates."""

    components: np.ndarray  # (K, L) unit rows, by decreasing variance
    mean: np.ndarray  # (L,)
    sigma: np.ndarray  # (K,) standard deviation along each direction
    ratio: np.ndarray  # (K,) fraction of the variance along each direction
    low: np.ndarray  # (L,) raw slider bounds per dimension
    high: np.ndarray  # (L,)

    @classmethod
    def from_stats(cls, stats: LatentStats) -> LatentAxes:
        # Raw sliders: the training range widened by half its span on each side (room to extrapolate).
        span = np.maximum(stats.max - stats.min, 1e-3)
        return cls(
            components=np.asarray(stats.components, np.float64),
            mean=np.asarray(stats.mean, np.float64),
            sigma=np.sqrt(np.maximum(stats.explained_variance, 1e-12)),
            ratio=np.asarray(stats.explained_variance_ratio, np.float64),
            low=np.asarray(stats.min - 0.5 * span, np.float64),
            high=np.asarray(stats.max + 0.5 * span, np.float64),
        )

    @property
    def latent_dims(self) -> int:
        return self.mean.shape[0]

    def to_sigmas(self, z: np.ndarray) -> np.ndarray:
        """(..., L) latent -> (..., K) coefficients along the directions, in their std."""
        return (np.asarray(z, np.float64) - self.mean) @ self.components.T / self.sigma

    def with_sigmas(self, z: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
        """Replace the first len(sigmas) coefficients of `z` (L,); the others and any part of `z`
        outside the PCA span are kept, so moving one slider moves z along one direction only."""
        z = np.asarray(z, np.float64)
        sigmas = np.asarray(sigmas, np.float64)
        k = len(sigmas)
        delta = (sigmas - self.to_sigmas(z)[:k]) * self.sigma[:k]
        return z + delta @ self.components[:k]

    def sample(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """(n, L) latents drawn from the Gaussian of the training latents (PCA space)."""
        coeffs = rng.standard_normal((n, len(self.sigma))) * self.sigma
        return self.mean + coeffs @ self.components
