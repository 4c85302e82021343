"""What each tab of the app shows, as functions of the loaded model and the user's inputs.

`Explorer` bundles a loaded checkpoint with what the app derives from it once (latent axes and
their labels, the examples' latents). Each `*_view` function returns everything one UI event
displays, so `app/ui.py` only wires components to these functions.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer.examples import example_camera
from crossingnets.explorer.explore import (
    SLIDER_SIGMAS,
    ExplorerConfig,
    LatentAxes,
    describe_directions,
    estimate_pose,
    interpolate,
    latent_views,
    pose_figure,
    pose_images,
    random_walk,
    run_walk,
    walk_figures,
    walk_frames,
    write_gif,
    write_pose_files,
    write_pose_mesh,
)
from crossingnets.explorer.figures import Figure, figure_page, iframe
from crossingnets.hand.conventions import Convention

if TYPE_CHECKING:
    from crossingnets.inference import HandPoseEstimator

log = logging.getLogger(__name__)

WALK_MODES = ("two random samples", "two examples", "uploaded image -> random sample", "random walk")
CAMERA_CHOICES = ("nyu", "icvl", "msra", "custom")


@dataclass(frozen=True)
class Explorer:
    """A loaded model and what the explorer derives from it once."""

    estimator: HandPoseEstimator
    convention: Convention
    crop: CropConfig
    axes: LatentAxes
    labels: tuple[str, ...]  # one per PCA slider: what the direction changes
    examples: dict[str, np.ndarray]  # example file name -> its estimated latent (L,)
    example_paths: dict[str, Path]
    config: ExplorerConfig

    @classmethod
    def load(
        cls,
        checkpoint: str | os.PathLike,
        examples_dir: str | os.PathLike | None,
        config: ExplorerConfig | None = None,
    ) -> Explorer:
        """Load a released-weights folder (with its latent PCA) and estimate the examples once,
        which also warms the network up so the first user request is as fast as the next."""
        from crossingnets.inference import HandPoseEstimator  # torch model code, loaded on demand

        config = ExplorerConfig() if config is None else config
        estimator = HandPoseEstimator.from_pretrained(checkpoint)
        if estimator.model.kind != "crossingnet":  # baselines have no generator nor smoothness head
            raise ValueError(
                f"checkpoint {checkpoint} is a {estimator.model.kind!r} baseline; the explorer needs a Crossing Net"
            )
        stats = estimator.latent_stats
        if stats is None:
            raise ValueError(
                f"checkpoint {checkpoint} has no latent statistics (latent_stats.safetensors); "
                "the explorer needs the PCA of the training latents"
            )
        convention, crop = estimator.convention, estimator.crop
        axes = LatentAxes.from_stats(stats)
        count = min(config.pca_sliders, len(axes.sigma))
        paths = sorted(Path(examples_dir).iterdir()) if examples_dir is not None else []
        latents = {
            p.name: estimate_pose(estimator, p, example_camera(p), limits=config.limits).latent for p in paths
        }
        log.info(
            "loaded %s (%s, %d px crops), %d examples", checkpoint, convention.name, crop.crop_px, len(paths)
        )
        return cls(
            estimator=estimator,
            convention=convention,
            crop=crop,
            axes=axes,
            labels=tuple(describe_directions(estimator, axes, convention, count)),
            examples=latents,
            example_paths={p.name: p for p in paths},
            config=config,
        )


# ---------------------------------------------------------------------------------------------
# Upload tab


@dataclass(frozen=True)
class UploadView:
    overlay: Image.Image  # the detected crop with the estimated 2D skeleton
    generated: Image.Image  # Gen(Ali(z)) from the estimated latent
    figure: Figure  # the 3D skeleton, camera frame mm
    summary: str  # latency and centre, Markdown
    files: list[Path]  # joints.json, joints.csv
    latent: np.ndarray  # (L,)
    joints_xyz: np.ndarray  # (J, 3) mm, for the mesh download


def upload_view(
    ex: Explorer,
    path: str | os.PathLike,
    camera: str,
    custom: tuple[float, float, float, float] | None,
    center: tuple[float, float, float] | None,
    out_dir: str | os.PathLike,
) -> UploadView:
    """A depth file -> everything the upload tab shows; raises ValueError with the user's message."""
    result = estimate_pose(ex.estimator, path, camera, custom, center, ex.config.limits)
    overlay, generated = pose_images(result, ex.convention, ex.crop)
    u, v, d = result.com_uvd
    summary = (
        f"**{1000 * result.seconds:.1f} ms** server side (file -> pose and generated depth) · "
        f"hand centre u={u:.0f} px, v={v:.0f} px, d={d:.0f} mm · {ex.convention.name.upper()} joints"
    )
    return UploadView(
        overlay=overlay,
        generated=generated,
        figure=pose_figure(result, ex.convention, ex.crop),
        summary=summary,
        files=write_pose_files(result, ex.convention, out_dir),
        latent=result.latent,
        joints_xyz=result.joints_xyz,
    )


def mesh_view(ex: Explorer, joints_xyz: np.ndarray | None, out_dir: str | os.PathLike) -> Path:
    """The posed hand mesh (GLB) of the last upload's joints."""
    if joints_xyz is None:
        raise ValueError("estimate a pose first (upload a depth image), then export its mesh")
    return write_pose_mesh(
        joints_xyz, ex.convention, Path(out_dir) / "hand.glb", ex.config.mesh_ik_iterations
    )


# ---------------------------------------------------------------------------------------------
# Latent tab


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


# ---------------------------------------------------------------------------------------------
# Walk tab


@dataclass(frozen=True)
class WalkView:
    animation_html: str  # an iframe: Plotly frames of skeletons and generated depth maps
    smoothness: Figure  # smoothness head's distance vs latent distance per step
    gif: Path  # the walk as an animated GIF
    summary: str  # Markdown


def walk_latents(
    ex: Explorer,
    mode: str,
    steps: int,
    seed: int,
    upload_latent: np.ndarray | None,
    example_a: str | None,
    example_b: str | None,
) -> np.ndarray:
    """The (steps, L) latent points of a walk of the given mode (one of WALK_MODES)."""
    if not 2 <= steps <= ex.config.max_walk_steps:
        raise ValueError(f"a walk has 2 to {ex.config.max_walk_steps} steps, got {steps}")
    rng = np.random.default_rng(seed)
    if mode == "two random samples":
        a, b = ex.axes.sample(rng, 2)
        return interpolate(a, b, steps)
    if mode == "two examples":
        missing = [e for e in (example_a, example_b) if e not in ex.examples]
        if missing:
            raise ValueError(f"choose two examples among {sorted(ex.examples)}; got {missing[0]!r}")
        return interpolate(ex.examples[example_a], ex.examples[example_b], steps)
    if mode == "uploaded image -> random sample":
        if upload_latent is None:
            raise ValueError("upload a depth image first (upload tab); the walk starts from its latent")
        return interpolate(upload_latent, ex.axes.sample(rng)[0], steps)
    if mode == "random walk":
        start = ex.axes.mean if upload_latent is None else np.asarray(upload_latent, np.float64)
        cfg = ex.config
        return random_walk(ex.axes, start, steps, rng, cfg.random_step_sigma, cfg.random_walk_pull)
    raise ValueError(f"unknown walk mode {mode!r}; expected one of {WALK_MODES}")


def walk_view(ex: Explorer, latents: np.ndarray, out_dir: str | os.PathLike, plotly_js_url: str) -> WalkView:
    """A walk's latent points -> its animation, smoothness plot and GIF."""
    walk = run_walk(ex.estimator, latents)
    frame_ms = ex.config.gif_frame_ms
    animation, smoothness = walk_figures(walk, ex.convention, ex.crop, frame_ms)
    gif = write_gif(walk_frames(walk, ex.convention, ex.crop), Path(out_dir) / "walk.gif", frame_ms)
    ratio = walk.smoothness_distance / np.maximum(walk.latent_distance, 1e-9)
    summary = (
        f"{len(latents)} steps · latent path length {walk.latent_distance.sum():.2f} · "
        f"smoothness / latent distance: median {np.median(ratio):.2f} (L_smo asks 1)"
    )
    return WalkView(iframe(figure_page(animation, plotly_js_url), 520), smoothness, gif, summary)
