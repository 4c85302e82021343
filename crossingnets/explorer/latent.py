"""The latent tab: one point of the shared latent space -> its pose (VAE decoder) and its depth
(generator), and the sliders that move it along the training latents' principal directions.

Pure function first (a latent -> both projections), then the tab's view, which `app/ui.py` wires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer.figures import Figure, crop_image, generated_to_crop, skeleton_figure
from crossingnets.explorer.space import Explorer
from crossingnets.hand.conventions import Convention

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator

SLIDER_SIGMAS = 3.0  # PCA sliders span +- this many standard deviations of their direction


def latent_views(
    estimator: HandPoseEstimator, z: np.ndarray, convention: Convention, crop: CropConfig
) -> tuple[Figure, Image.Image]:
    """One latent point (L,) -> (3D skeleton about the crop centre, generated depth crop image)."""
    z = np.asarray(z, np.float64).reshape(1, -1)
    joints_mm = estimator.decode_latent(z)[0]
    generated = generated_to_crop(estimator.generate_depth(z)[0])
    fig = skeleton_figure(
        joints_mm, convention, np.zeros(3), 0.5 * crop.cube_mm, "decoded pose (mm about the crop centre)"
    )
    return fig, crop_image(generated)


# ---------------------------------------------------------------------------------------------
# The tab


@dataclass(frozen=True)
class LatentView:
    latent: np.ndarray  # (L,)
    sigmas: list[float]  # PCA slider values (std of each direction)
    raw: list[float]  # raw slider values (L,)
    figure: Figure  # decoded 3D skeleton, mm about the crop centre
    depth: Image.Image  # generated depth crop


def latent_view(ex: Explorer, z: np.ndarray) -> LatentView:
    """One latent point -> both projections (pose and depth) and every slider's value.

    Slider values are clipped to the sliders' ranges (a point beyond them, e.g. an unusual
    upload's latent, shows at the ends); the figures show the point itself.
    """
    z = np.asarray(z, np.float64).reshape(ex.axes.latent_dims)
    if not np.isfinite(z).all():
        raise ValueError("latent values must be finite numbers")
    figure, depth = latent_views(ex.estimator, z, ex.convention, ex.crop)
    sigmas = np.clip(ex.axes.to_sigmas(z)[: len(ex.labels)], -SLIDER_SIGMAS, SLIDER_SIGMAS)
    raw = np.clip(z, ex.axes.low, ex.axes.high)
    return LatentView(z, np.round(sigmas, 3).tolist(), np.round(raw, 4).tolist(), figure, depth)


def latent_from_sliders(ex: Explorer, z: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """The latent after the PCA sliders moved: `z` with its first coefficients replaced."""
    return ex.axes.with_sigmas(np.asarray(z, np.float64), np.asarray(sigmas, np.float64))


def random_latent(ex: Explorer, seed: int | None) -> np.ndarray:
    """A latent drawn from the training latents' Gaussian (fresh entropy when seed is None)."""
    return ex.axes.sample(np.random.default_rng(seed))[0]
