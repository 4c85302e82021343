"""Synthetic depth hands: sample -> pose -> render -> sensor -> the shared preprocessing -> store.

Synthetic frames are raw sensor-like depth frames at the dataset's resolution, cropped by the same
`preprocess` as real NYU/ICVL/MSRA frames (centre detected from the depth), so the model sees one
input distribution whatever the source.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crossingnets.camera import Intrinsics, get_camera, xyz_to_uvd
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess, uvd_to_crop
from crossingnets.data.store import StoreWriter
from crossingnets.draw import contact_sheet, draw_skeleton
from crossingnets.hand.conventions import Convention, get_convention
from crossingnets.hand.kinematics import (
    HandPose,
    HandShape,
    forward_kinematics,
    hand_capsules,
    landmarks_to_joints,
)
from crossingnets.hand.render import Rendering
from crossingnets.hand.sampler import SamplerConfig, sample_hands
from crossingnets.hand.sensor import SceneConfig, SensorConfig, simulate

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when a change alters what a seed produces


@dataclass(frozen=True)
class GenerateConfig:
    convention: str = "nyu"  # joint convention; also picks the camera of that dataset
    cube_mm: float | None = None  # crop cube side; None: the convention's default
    crop_px: int = 128  # network input side
    batch_frames: int = 16  # frames rendered per batch (the seed stream depends on it); larger
    # (B, 480, 640) buffers were page-faulted afresh on each call and rendered 2x slower
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)

    def crop(self) -> CropConfig:
        cube = get_convention(self.convention).default_cube_mm if self.cube_mm is None else self.cube_mm
        return CropConfig(cube_mm=cube, crop_px=self.crop_px)


@dataclass(frozen=True)
class SyntheticBatch:
    depth_mm: np.ndarray  # (B, H, W) raw sensor-like frames, 0 = missing; packed windows: see `sensed`
    joints_xyz: np.ndarray  # (B, J, 3) camera mm
    sensed: Rendering | None = None  # with windows: their layout (`Rendering.window`); None: frames

    def frames(self) -> Iterator[tuple[np.ndarray, tuple[int, int] | None]]:
        """Each frame's depth and the origin (u0, v0) of its window in the camera's frame (None:
        the whole frame), as `preprocess` takes them."""
        for b in range(len(self.joints_xyz)):
            if self.sensed is None:
                yield self.depth_mm[b], None
            else:
                yield self.sensed.window(self.depth_mm, b), tuple(int(x) for x in self.sensed.roi_px[b, :2])


def render_hands(
    rng: np.random.Generator,
    pose: HandPose,
    shape: HandShape,
    convention: Convention,
    cam: Intrinsics,
    cfg: GenerateConfig,
    windows: bool = False,
) -> SyntheticBatch:
    """Given hands as raw sensor-like depth frames with their joints. `windows`: each frame's
    window alone (the frame is 0 outside it): the same crops for a fraction of the work."""
    joints = np.asarray(landmarks_to_joints(forward_kinematics(pose, shape), convention), dtype=np.float32)
    sensed = simulate(hand_capsules(pose, shape), cam, rng, cfg.sensor, cfg.scene, windows)
    return SyntheticBatch(sensed.depth_mm, joints, sensed if windows else None)


def render_batch(
    rng: np.random.Generator,
    n: int,
    convention: Convention,
    cam: Intrinsics,
    cfg: GenerateConfig,
    windows: bool = False,
) -> SyntheticBatch:
    """`n` random hands as raw depth frames (or windows) with their joints."""
    pose, shape = sample_hands(rng, n, cam, cfg.sampler)
    return render_hands(rng, pose, shape, convention, cam, cfg, windows)


def to_network_input(
    batch: SyntheticBatch, cam: Intrinsics, crop: CropConfig
) -> dict[str, np.ndarray] | None:
    """Raw frames -> store fields through the shared preprocessing; frames whose crop holds no
    hand (possible after heavy sensor dropout) are dropped. None when nothing is left."""
    rows = []
    for (depth, origin), joints in zip(batch.frames(), batch.joints_xyz, strict=True):
        try:
            c = preprocess(depth, cam, crop, origin_px=origin)
        except NoHandError:
            continue
        rows.append((c.depth[None], joints, xyz_to_uvd(joints, cam), c.com_uvd))
    if not rows:
        return None
    names = ("depth", "joints_xyz", "joints_uvd", "com_uvd")
    return {k: np.stack(v).astype(np.float32) for k, v in zip(names, zip(*rows, strict=True), strict=True)}


def iter_frames(n: int, seed: int, cfg: GenerateConfig) -> Iterator[dict[str, np.ndarray]]:
    """Batches of store fields, `n` frames in all; the same seed and config give the same frames."""
    if n <= 0:
        raise ValueError(f"number of frames must be positive, got {n}")
    convention, cam, crop = get_convention(cfg.convention), get_camera(cfg.convention), cfg.crop()
    rng = np.random.default_rng(seed)
    left = n
    while left > 0:
        batch = to_network_input(
            render_batch(rng, cfg.batch_frames, convention, cam, cfg, windows=True), cam, crop
        )
        if batch is None:
            continue
        batch = {k: v[:left] for k, v in batch.items()}
        left -= len(batch["depth"])
        yield batch


def sample_sheet(batch: dict[str, np.ndarray], cfg: GenerateConfig, count: int = 32):
    """A contact sheet (PIL image) of the first `count` crops with their 2D skeletons."""
    convention, cam, crop = get_convention(cfg.convention), get_camera(cfg.convention), cfg.crop()
    images = [
        draw_skeleton(d[0], uvd_to_crop(j, com, cam, crop), convention)
        for d, j, com in zip(batch["depth"][:count], batch["joints_uvd"], batch["com_uvd"], strict=False)
    ]
    return contact_sheet(images)


def iter_posed_frames(
    pose: HandPose, shape: HandShape, seed: int, cfg: GenerateConfig
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of store fields for given hands (e.g. fitted to real labels by IK), in order;
    a frame whose crop holds no hand is dropped."""
    convention, cam, crop = get_convention(cfg.convention), get_camera(cfg.convention), cfg.crop()
    rng = np.random.default_rng(seed)
    for lo in range(0, len(pose.rotation), cfg.batch_frames):
        part = slice(lo, lo + cfg.batch_frames)
        hands = render_hands(rng, HandPose(*(a[part] for a in pose)), HandShape(*(a[part] for a in shape)),
                             convention, cam, cfg, windows=True)  # fmt: skip
        batch = to_network_input(hands, cam, crop)
        if batch is not None:
            yield batch


def write_frames(
    out: str | Path,
    batches: Iterable[dict[str, np.ndarray]],
    total: int,
    cfg: GenerateConfig,
    attrs: dict,
    overwrite: bool = False,
    sheet: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Write batches of synthetic frames to the store `out` (atomically); optionally a PNG sheet
    of the first batch."""
    convention, cam, crop = get_convention(cfg.convention), get_camera(cfg.convention), cfg.crop()
    attrs = {"source": "synthetic", "generator_version": GENERATOR_VERSION,
             "generator": dataclasses.asdict(cfg), **attrs}  # fmt: skip
    first = None
    with (
        StoreWriter(out, convention, cam, crop, attrs, overwrite=overwrite) as writer,
        tqdm(total=total, desc=f"generate {Path(out).name}", unit="frame", disable=not progress) as bar,
    ):
        for batch in batches:
            writer.append(**batch)
            first = batch if first is None else first
            bar.update(len(batch["depth"]))
    if sheet is not None:
        sample_sheet(first, cfg).save(sheet)
    log.info("wrote %d frames to %s", writer.num_frames, out)
    return Path(out)


def generate(
    out: str | Path,
    n: int,
    seed: int,
    cfg: GenerateConfig = GenerateConfig(),
    overwrite: bool = False,
    sheet: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Write `n` random synthetic frames to the store `out`; optionally a PNG contact sheet."""
    return write_frames(
        out, iter_frames(n, seed, cfg), n, cfg, {"seed": int(seed)}, overwrite, sheet, progress
    )
