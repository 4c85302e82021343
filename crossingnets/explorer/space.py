"""The latent space every tab shows: a loaded model and what the explorer derives from it once.

The shared latent z (the VAE code + 3-d root offset: (35,) for the release model, (23,) in the
paper) is moved along the principal directions of the training latents, stored with the
checkpoint (`crossingnets.checkpoint.LatentStats`, as `axes.LatentAxes`), and by the named sliders
(`directions.py`: one pose attribute at a time). `Explorer` bundles the model with those axes,
their labels, the named sliders' ranges, the explorer index (training frames and their latents,
`index.py`, when one was written for these weights) and the example frames' latents and true
joints, so each tab module (upload, latent, walk) takes one argument for them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossingnets.data.depth_file import DEFAULT_LIMITS, UploadLimits
from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer.axes import LatentAxes
from crossingnets.explorer.directions import NamedSliders, named_sliders
from crossingnets.explorer.examples import (
    FrameLabels,
    example_camera,
    example_frames,
    file_digest,
    read_labels,
)
from crossingnets.explorer.index import ExplorerIndex, load_index
from crossingnets.hand.conventions import FINGERS, Convention

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplorerConfig:
    pca_sliders: int = 8  # principal directions shown as sliders (the rest in the raw panel)
    walk_steps: int = 16  # default number of latent points of a walk
    max_walk_steps: int = 64  # bound on a requested walk
    random_step_sigma: float = 0.35  # random walk: step std per PCA direction, in its std
    random_walk_pull: float = 0.1  # random walk: fraction of the way back to the mean per step
    gif_frame_ms: int = 120  # frame duration of the exported walk GIF
    # IK of the GLB download, one thread, 40 test poses (session 15): 120 iterations fit them to 0.18 mm
    # in 807 ms (median), 60 to 0.49 mm in 276 ms; the estimate it meshes is itself ~15 mm off
    mesh_ik_iterations: int = 60
    # The upload tab's analysis-by-synthesis iterations (None: the model's own, r8's 40; 0: the
    # network's estimate). On 200 frames each of the synthetic test / NYU's poses / the independent
    # renderer (r8, session 18): 40 -> 11.2 / 13.8 / 16.7 mm, 20 -> 12.0 / 14.4 / 17.1, 0 -> 13.7 /
    # 15.7 / 18.7; CPU per upload estimate, one thread: 0 -> ~18 ms, 20 -> ~140, 40 -> ~200.
    refine_iterations: int | None = None
    limits: UploadLimits = DEFAULT_LIMITS


def describe_directions(
    estimator: HandPoseEstimator, axes: LatentAxes, convention: Convention, count: int
) -> list[str]:
    """A label per principal direction saying what it changes, from the poses it decodes to.

    Decodes mean +- 2 std along each direction and reports the hand's move (root) and the
    fingers whose joints move most relative to the root, in mm.
    """
    labels = []
    finger_of = np.array(convention.fingers)
    for k in range(count):
        ends = axes.mean + np.outer([-2.0, 2.0], axes.sigma[k] * axes.components[k])
        joints = estimator.decode_latent(ends)  # (2, J, 3) mm about the crop centre
        root = joints[:, convention.root]
        shift = float(np.linalg.norm(root[1] - root[0]))
        local = np.linalg.norm((joints[1] - root[1]) - (joints[0] - root[0]), axis=-1)  # (J,)
        moves = {f: float(local[finger_of == f].max()) for f in FINGERS if (finger_of == f).any()}
        top = sorted(moves, key=moves.get, reverse=True)[:2]
        what = ", ".join(f"{f} {moves[f]:.0f} mm" for f in top)
        labels.append(f"PC{k + 1} ({100 * axes.ratio[k]:.0f}% var): hand moves {shift:.0f} mm; {what}")
    return labels


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
    sliders: NamedSliders | None = None  # None: the model's joints have no named attributes
    index: ExplorerIndex | None = None  # training frames and their latents (nearest frames)
    index_note: str = ""  # why there is no index, with the command that writes one
    # SHA-256 of an example frame's bytes -> its true joints, so an upload of it (any name) is scored
    example_labels: dict[str, FrameLabels] = field(default_factory=dict)

    def labels_of(self, path: str | os.PathLike) -> FrameLabels | None:
        """The true joints of an uploaded frame when it is one of the examples, else None (also
        when the file went away since it was read: its labels are an extra, not the estimate)."""
        try:
            return self.example_labels.get(file_digest(path)) if self.example_labels else None
        except OSError:
            return None

    @classmethod
    def load(
        cls,
        checkpoint: str | os.PathLike,
        examples_dir: str | os.PathLike | None,
        config: ExplorerConfig | None = None,
        index: str | os.PathLike | None = None,
    ) -> Explorer:
        """Load a released-weights folder (with its latent PCA) and estimate the examples once,
        which also warms the network up so the first user request is as fast as the next.
        `index`: the explorer index file (default `index.index_path`: $CROSSINGNETS_EXPLORER_INDEX
        or the checkpoint's explorer_index.npz); without a valid one the app runs without the
        nearest-frames panel and says why."""
        from crossingnets.inference import HandPoseEstimator  # torch model code, loaded on demand

        config = ExplorerConfig() if config is None else config
        estimator = HandPoseEstimator.from_pretrained(checkpoint, refine_iterations=config.refine_iterations)
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
        paths = example_frames(examples_dir) if examples_dir is not None else []
        latents = {
            p.name: estimator.predict_file(p, example_camera(p), limits=config.limits).latent for p in paths
        }
        try:
            sliders = named_sliders(estimator, axes)
        except ValueError as err:  # a convention without the attributes' joints
            sliders = None
            log.warning("no named sliders: %s", err)
        frames, note = load_index(checkpoint, axes.latent_dims, index)
        if note:
            log.warning("%s", note)
        log.info(
            "loaded %s (%s, %d px crops), %d examples, %s",
            checkpoint,
            convention.name,
            crop.crop_px,
            len(paths),
            f"an index of {len(frames.frames)} training frames" if frames else "no index",
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
            sliders=sliders,
            index=frames,
            index_note=note,
            example_labels={file_digest(p): labels for p in paths if (labels := read_labels(p)) is not None},
        )
