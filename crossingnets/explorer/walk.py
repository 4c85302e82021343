"""The walk tab: a path through the latent space -> the poses and depth maps along it, and how far
the smoothness head thinks each step is (the paper's L_smo asks: as far as in the latent).

Walks: between two random samples, two examples or two uploaded frames (each encoded through the
posterior by the upload tab's `estimate_pose`), from an upload to a sample, a random walk, or
along a named slider (one attribute across its range, the others held: `directions.py`). Pure
functions first (latent paths, decoding and rendering a walk, its figures and GIF), then the tab's
view, which `app/ui.py` wires.

Speed: a walk is one batch through the generator, the decoder and the smoothness head, and one
figure whose frames carry each step's depth at the crop's own size (about a kilobyte of PNG; the
browser enlarges it) with the 2D skeleton as vector traces over it. The GIF is made on
request from the walk (`walk_gif`): quantising and encoding its frames costs more than the walk.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from crossingnets.camera import PRESETS
from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer.directions import attribute_path
from crossingnets.explorer.figures import (
    DEPTH_COLOURS,
    Figure,
    centered_to_crop_uv,
    crop_points_mm,
    crop_to_mm,
    depth_range_mm,
    figure_page,
    generated_to_crop,
    iframe,
    skeleton_over_depth,
    smoothness_figure,
    text_font,
    walk_figure,
)
from crossingnets.explorer.space import Explorer, LatentAxes
from crossingnets.explorer.upload import estimate_pose
from crossingnets.files import atomic_output
from crossingnets.hand.conventions import FINGER_COLORS, Convention

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator

WALK_MODES = (
    "two random samples",
    "two examples",
    "two uploaded frames",
    "uploaded image -> random sample",
    "along a named slider",
    "random walk",
)
WALK_CAMERAS = tuple(PRESETS)  # the cameras a walk's uploaded frames may come from
CLOUD_STRIDE = 2  # an animation's point clouds keep every 2nd pixel row and column (~1/4 the points)


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int) -> np.ndarray:
    """(steps, L) points on the straight line from z_a to z_b, both ends included."""
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * np.asarray(z_a, np.float64) + t * np.asarray(z_b, np.float64)


def random_walk(
    axes: LatentAxes, start: np.ndarray, steps: int, rng: np.random.Generator, step_sigma: float, pull: float
) -> np.ndarray:
    """(steps, L) a random walk in PCA space from `start`: Gaussian steps of `step_sigma` std per
    direction, pulled a fraction `pull` back to the mean each step so it stays among training latents."""
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    c = axes.to_sigmas(start)
    rest = np.asarray(start, np.float64) - axes.mean - (c * axes.sigma) @ axes.components
    out = [np.asarray(start, np.float64)]
    for _ in range(steps - 1):
        c = (1 - pull) * c + step_sigma * rng.standard_normal(c.shape)
        out.append(axes.mean + rest + (c * axes.sigma) @ axes.components)
    return np.stack(out)


@dataclass(frozen=True)
class Walk:
    latents: np.ndarray  # (T, L)
    joints_mm: np.ndarray  # (T, J, 3) about the crop centre
    generated: np.ndarray  # (T, S, S) crops, background at +1
    latent_distance: np.ndarray  # (T-1,) |z_t+1 - z_t|
    smoothness_distance: np.ndarray  # (T-1,) |smo(Gen(z_t), Gen(z_t+1))|, the smoothness head's estimate


def run_walk(estimator: HandPoseEstimator, latents: np.ndarray) -> Walk:
    """Decode and render every point of a walk (T, L), one batch each, and measure consecutive
    distances. smo(a, b) = f(a) - f(b), so smo(x_t, x_0) for every step (f of T + 1 crops, the
    reference broadcast) gives each smo(x_t, x_t+1) as a difference, where the pairs would take 2T - 2."""
    latents = np.asarray(latents, np.float64)
    raw = np.asarray(estimator.generate_depth(latents))
    to_first = estimator.smoothness_distance(raw, raw[:1])  # (T, L): f(x_t) - f(x_0)
    smo = np.linalg.norm(np.diff(to_first, axis=0), axis=1)
    return Walk(
        latents=latents,
        joints_mm=np.asarray(estimator.decode_latent(latents), np.float64),
        generated=generated_to_crop(raw),
        latent_distance=np.linalg.norm(np.diff(latents, axis=0), axis=1),
        smoothness_distance=smo,
    )


def png_data_uri(image: Image.Image) -> str:
    """An image as a PNG data URI, which a Plotly animation frame can show without a file."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def walk_depth_range(walk: Walk, crop: CropConfig) -> tuple[float, float]:
    """One colour range for every depth map of a walk, so its colours mean the same mm throughout."""
    return depth_range_mm(crop_to_mm(walk.generated, crop.cube_mm))


def walk_frames(walk: Walk, convention: Convention, crop: CropConfig) -> list[Image.Image]:
    """Per step, the generated depth in colour with the decoded skeleton over it, the colour bar
    in mm and the step number."""
    depth_range = walk_depth_range(walk, crop)
    frames = []
    for t, (g, j) in enumerate(zip(walk.generated, walk.joints_mm, strict=True)):
        image = skeleton_over_depth(g, j, convention, crop, depth_range)
        ImageDraw.Draw(image).text(
            (6, 4), f"step {t + 1}/{len(walk.generated)}", fill="black", font=text_font(14)
        )
        frames.append(image)
    return frames


def walk_figures(
    walk: Walk, convention: Convention, crop: CropConfig, frame_ms: int
) -> tuple[Figure, Figure]:
    """(animated skeleton in its depth points + depth maps, smoothness-vs-latent-distance plot).
    The depth maps stay at the crop's size; the skeleton is drawn over them as vector traces."""
    depth_range = walk_depth_range(walk, crop)
    colours = DEPTH_COLOURS.rgb(crop_to_mm(walk.generated, crop.cube_mm), *depth_range)  # (T, S, S, 3)
    uris = [png_data_uri(Image.fromarray(rgb)) for rgb in colours]
    clouds = [crop_points_mm(g, crop.cube_mm, CLOUD_STRIDE) for g in walk.generated]
    uv = centered_to_crop_uv(walk.joints_mm, crop)
    animation = walk_figure(
        walk.joints_mm, uris, convention, frame_ms, clouds, depth_range, joints_uv=uv, image_px=crop.crop_px
    )
    return animation, smoothness_figure(walk.latent_distance, walk.smoothness_distance)


def loop_frames(frames: list[Image.Image]) -> list[Image.Image]:
    """Forth and back (a, ..., b, ..., a) without repeating the ends, so a GIF loops seamlessly."""
    return frames + frames[-2:0:-1]


@functools.cache
def gif_palette() -> Image.Image:
    """One palette for every frame of a walk's GIF: the depth colours (128 levels), the fingers',
    and black to white (text, colour bar). A frame mapped onto it needs no palette of its own, whose
    computation (median cut, per frame) took most of the 4 s a 32-step walk's GIF used to cost."""
    depth = DEPTH_COLOURS.rgb(np.linspace(0.0, 1.0, 128), 0.0, 1.0)
    fingers = np.array([ImageColor.getrgb(c) for c in FINGER_COLORS.values()])
    greys = np.repeat(np.linspace(0, 255, 256 - len(depth) - len(fingers)).round()[:, None], 3, axis=1)
    palette = Image.new("P", (1, 1))
    palette.putpalette(np.concatenate([depth, fingers, greys]).astype(np.uint8).ravel().tolist())
    return palette


def write_gif(frames: list[Image.Image], path: str | os.PathLike, frame_ms: int) -> Path:
    """An animated, looping GIF of `frames` (RGB) on `gif_palette`, written atomically."""
    indexed = {id(f): f.quantize(palette=gif_palette(), dither=Image.Dither.NONE) for f in frames}
    frames = [indexed[id(f)] for f in frames]  # a frame repeated (a loop) is mapped once
    with atomic_output(path) as tmp:
        frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=frame_ms,
            loop=0,
            optimize=False,  # the palette is fixed: nothing to optimise, and it would cost 5x
        )
    return Path(path)


# ---------------------------------------------------------------------------------------------
# The tab


@dataclass(frozen=True)
class WalkView:
    animation_html: str  # an iframe: Plotly frames of skeletons and generated depth maps
    smoothness: Figure  # smoothness head's distance vs latent distance per step
    summary: str  # Markdown
    walk: Walk  # what was drawn, for its GIF (`walk_gif`)


def upload_latents(
    ex: Explorer,
    paths: list[str | os.PathLike | None],
    camera: str | os.PathLike,
    depth_unit: str | float = "mm",
) -> np.ndarray:
    """(2, L) latents of two uploaded depth files, each encoded through the posterior by the upload
    tab's path (`upload.estimate_pose`: detection, crop, network)."""
    if len(paths) != 2 or any(p is None for p in paths):
        raise ValueError("upload two depth frames (A and B) for a walk between them")
    return np.stack(
        [
            estimate_pose(
                ex.estimator, p, camera, limits=ex.config.limits, depth_unit=depth_unit
            ).prediction.latent
            for p in paths
        ]
    ).astype(np.float64)


def walk_latents(
    ex: Explorer,
    mode: str,
    steps: int,
    seed: int,
    upload_latent: np.ndarray | None,
    example_a: str | None,
    example_b: str | None,
    *,
    start: np.ndarray | None = None,
    slider: str | None = None,
    uploads: np.ndarray | None = None,
) -> np.ndarray:
    """The (steps, L) latent points of a walk of the given mode (one of WALK_MODES).

    start: the latent tab's point (a named-slider walk starts there; default the mean); slider:
    the named slider to walk along; uploads: (2, L) latents of two uploaded frames."""
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
    if mode == "two uploaded frames":
        if uploads is None:
            raise ValueError("upload two depth frames (A and B) for a walk between them")
        return interpolate(uploads[0], uploads[1], steps)
    if mode == "uploaded image -> random sample":
        if upload_latent is None:
            raise ValueError("upload a depth image first (upload tab); the walk starts from its latent")
        return interpolate(upload_latent, ex.axes.sample(rng)[0], steps)
    if mode == "along a named slider":
        if ex.sliders is None or slider not in ex.sliders.names:
            raise ValueError(
                f"choose a named slider among {ex.sliders.names if ex.sliders else ()}; got {slider!r}"
            )
        k = ex.sliders.names.index(slider)
        values = np.linspace(ex.sliders.low[k], ex.sliders.high[k], steps)
        z = ex.axes.mean if start is None else np.asarray(start, np.float64)
        return attribute_path(ex.estimator, ex.axes, z, slider, values)
    if mode == "random walk":
        start = ex.axes.mean if upload_latent is None else np.asarray(upload_latent, np.float64)
        cfg = ex.config
        return random_walk(ex.axes, start, steps, rng, cfg.random_step_sigma, cfg.random_walk_pull)
    raise ValueError(f"unknown walk mode {mode!r}; expected one of {WALK_MODES}")


def walk_view(ex: Explorer, latents: np.ndarray, plotly_js_url: str) -> WalkView:
    """A walk's latent points -> its animation and smoothness plot."""
    walk = run_walk(ex.estimator, latents)
    animation, smoothness = walk_figures(walk, ex.convention, ex.crop, ex.config.gif_frame_ms)
    ratio = walk.smoothness_distance / np.maximum(walk.latent_distance, 1e-9)
    summary = (
        f"{len(latents)} steps · latent path length {walk.latent_distance.sum():.2f} · "
        f"smoothness / latent distance: median {np.median(ratio):.2f} (L_smo asks 1)"
    )
    return WalkView(iframe(figure_page(animation, plotly_js_url), 520), smoothness, summary, walk)


def walk_gif(ex: Explorer, walk: Walk | None, out_dir: str | os.PathLike) -> Path:
    """The GIF of a walk (forth and back, looping): each step's depth in colour with its skeleton,
    the colour bar in mm and the step number."""
    if walk is None:
        raise ValueError("make a walk first (the Walk button); its GIF follows it")
    frames = loop_frames(walk_frames(walk, ex.convention, ex.crop))
    return write_gif(frames, Path(out_dir) / "walk.gif", ex.config.gif_frame_ms)
