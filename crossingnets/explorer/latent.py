"""The latent tab: one point of the shared latent space -> its pose (VAE decoder) and its depth
(generator), the knobs that move it, and the training frames nearest to it.

Knobs: named sliders (one pose attribute each, the others held: `directions.edit_attribute`),
the principal directions of the training latents (PCA sliders) and the raw coordinates. Pure
functions first (a latent -> both projections), then the tab's view, which `app/ui.py` wires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer.attributes import ATTRIBUTES
from crossingnets.explorer.directions import MEASURES, difference, edit_attribute, measure
from crossingnets.explorer.figures import (
    Figure,
    crop_points_mm,
    generated_to_crop,
    hand_figure,
    skeleton_over_depth,
)
from crossingnets.explorer.nearest import Neighbours, nearest_frames
from crossingnets.explorer.space import Explorer
from crossingnets.hand.conventions import Convention
from crossingnets.hand.kinematics import default_shape, flat_pose, forward_kinematics, landmarks_to_joints

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator

SLIDER_SIGMAS = 3.0  # PCA sliders span +- this many standard deviations of their direction
# Colours of the latent tab's depth: fixed, so a slider move never rescales them (a hand pitched
# 70 deg spans about +-80 mm about its centre).
LATENT_DEPTH_RANGE_MM = (-80.0, 80.0)
NEAREST_FRAMES = 6


def latent_views(
    estimator: HandPoseEstimator, z: np.ndarray, convention: Convention, crop: CropConfig
) -> tuple[Figure, Image.Image]:
    """One latent point (L,) -> (3D skeleton inside its lifted depth, 2D depth with skeleton)."""
    z = np.asarray(z, np.float64).reshape(1, -1)
    joints_mm = estimator.decode_latent(z)[0]
    generated = generated_to_crop(estimator.generate_depth(z)[0])
    fig = hand_figure(
        joints_mm,
        crop_points_mm(generated, crop.cube_mm),
        convention,
        LATENT_DEPTH_RANGE_MM,
    )
    return fig, skeleton_over_depth(generated, joints_mm, convention, crop, LATENT_DEPTH_RANGE_MM)


# ---------------------------------------------------------------------------------------------
# The tab


@dataclass(frozen=True)
class LatentView:
    latent: np.ndarray  # (L,)
    sigmas: list[float]  # PCA slider values (std of each direction)
    raw: list[float]  # raw slider values (L,)
    named: list[float]  # named slider values: the decoded pose's attributes ([] without sliders)
    figure: Figure  # decoded 3D skeleton inside the lifted generated depth, mm about the crop centre
    depth: Image.Image  # generated depth crop in colour, skeleton over it, colour bar in mm
    readout: str  # Markdown: what the last knob did
    neighbours: Neighbours | None  # nearest training frames (None without an explorer index)


def latent_view(ex: Explorer, z: np.ndarray, note: str = "") -> LatentView:
    """One latent point -> both projections, every slider's value and its nearest training frames.

    Slider values are clipped to the sliders' ranges (a point beyond them, e.g. an unusual
    upload's latent, shows at the ends); the figures show the point itself.
    """
    z = np.asarray(z, np.float64).reshape(ex.axes.latent_dims)
    if not np.isfinite(z).all():
        raise ValueError("latent values must be finite numbers")
    figure, depth = latent_views(ex.estimator, z, ex.convention, ex.crop)
    sigmas = np.clip(ex.axes.to_sigmas(z)[: len(ex.labels)], -SLIDER_SIGMAS, SLIDER_SIGMAS)
    raw = np.clip(z, ex.axes.low, ex.axes.high)
    named = []
    if ex.sliders is not None:
        named = np.round(
            np.clip(measure(ex.estimator, z)[0, : len(ATTRIBUTES)], ex.sliders.low, ex.sliders.high), 1
        )
    neighbours = None if ex.index is None else nearest_frames(ex.index, z, NEAREST_FRAMES)
    return LatentView(
        latent=z,
        sigmas=np.round(sigmas, 3).tolist(),
        raw=np.round(raw, 4).tolist(),
        named=list(map(float, named)),
        figure=figure,
        depth=depth,
        readout=note,
        neighbours=neighbours,
    )


def slider_id(name: str) -> str:
    """A named slider's API and element name: "index curl" -> "named_index_curl"."""
    return "named_" + name.replace(" ", "_")


def latent_from_named(ex: Explorer, z: np.ndarray, name: str, value: float) -> tuple[np.ndarray, str]:
    """The latent after named slider `name` moved to `value` (clipped to its range), and a note
    of what it did: the attribute asked and got, and how far the others moved."""
    if ex.sliders is None:
        raise ValueError(f"this model's {ex.convention.name.upper()} joints have no named sliders")
    if name not in ex.sliders.names:
        raise ValueError(f"unknown named slider {name!r}; expected one of {ex.sliders.names}")
    k = ex.sliders.names.index(name)
    value = float(np.clip(value, ex.sliders.low[k], ex.sliders.high[k]))
    edit = edit_attribute(ex.estimator, ex.axes, np.asarray(z, np.float64), name, value)
    miss = np.abs(difference(edit.measured, edit.target))
    others = np.delete(miss, k)
    unit = ATTRIBUTES[k].unit
    worst = MEASURES[[i for i in range(len(MEASURES)) if i != k][int(others.argmax())]]
    note = (
        f"**{name}**: asked {value:.0f} {unit}, got {edit.measured[k]:.0f} {unit} · every other attribute "
        f"and the hand's position held within {others.max():.1f} (deg or mm; most: {worst})"
    )
    return edit.latent, note


def latent_from_sliders(ex: Explorer, z: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """The latent after the PCA sliders moved: `z` with its first coefficients replaced."""
    return ex.axes.with_sigmas(np.asarray(z, np.float64), np.asarray(sigmas, np.float64))


def start_latent(ex: Explorer) -> np.ndarray:
    """Where the tab starts and resets to: the kinematic hand open and flat, palm to the camera,
    fingers up, palm at the crop centre, encoded by the pose VAE; the first thing a person should
    see is a hand (the training latents' mean decodes to one seen fingers-first). A model without
    NYU joints starts at the mean."""
    if ex.sliders is None:
        return ex.axes.mean
    joints = landmarks_to_joints(forward_kinematics(flat_pose(1, 0.0), default_shape(1)), ex.convention)
    return ex.estimator.encode_joints(joints)[0]


def random_latent(ex: Explorer, seed: int | None) -> np.ndarray:
    """A latent drawn from the training latents' Gaussian (fresh entropy when seed is None)."""
    return ex.axes.sample(np.random.default_rng(seed))[0]
