"""Domain-randomised synthetic frames: many hands, shapes, sensors and crop centres.

The fixed generator draws every frame from one hand-shape and one sensor distribution; a model
trained on it learns that renderer (issue 11: 114 mm on another renderer's hands). Here every chunk
of frames draws its own sensor model, the hand shapes spread wider, and each crop is centred where
inference will centre it: on the detected centre (pulled by the forearm), or near the palm (the
second, re-centred pass), both with a random error. Frames go through the shared `preprocess`.

Chunks are seeded by (seed, chunk index) alone, so the frames do not depend on the worker count.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crossingnets.camera import get_camera, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.preprocess import NoHandError, crop_depth, detect_center
from crossingnets.data.store import StoreWriter
from crossingnets.data.synthetic import GENERATOR_VERSION, GenerateConfig, render_batch
from crossingnets.hand.conventions import get_convention


@dataclass(frozen=True)
class RandomizeConfig:
    base: GenerateConfig = GenerateConfig(convention="nyu", crop_px=64, cube_mm=300.0)
    scale_range: tuple[float, float] = (0.75, 1.25)  # overall hand size (fixed generator: 0.85-1.15)
    thickness_range: tuple[float, float] = (0.7, 1.4)  # finger and palm thickness (fixed: 0.85-1.15)
    proportion_noise: float = 0.08  # relative sd of each link length (fixed: 0.05)
    wrist_flex_deg: float = 50.0  # forearm direction (fixed: 35)
    noise_std_at_1m_mm: tuple[float, float] = (0.0, 5.0)  # per chunk, uniform (fixed: 1.4)
    quant_step_at_1m_mm: tuple[float, float] = (0.0, 6.0)  # (fixed: 3)
    edge_dropout: tuple[float, float] = (0.0, 0.8)  # (fixed: 0.4)
    holes_per_frame: tuple[float, float] = (0.0, 3.0)  # (fixed: 0.5)
    palm_center_prob: float = 0.5  # crops centred near the palm joint rather than the detected centre
    center_jitter_mm: float = 12.0  # sd of the crop centre's error per axis, both kinds of centre
    chunk_frames: int = 256  # frames per seeded chunk (one task of a worker)


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def chunk_config(rng: np.random.Generator, cfg: RandomizeConfig) -> GenerateConfig:
    """The generator config of one chunk: the wider hand distribution and a random sensor."""
    sampler = dataclasses.replace(
        cfg.base.sampler,
        scale_range=cfg.scale_range,
        thickness_range=cfg.thickness_range,
        proportion_noise=cfg.proportion_noise,
        wrist_flex_deg=cfg.wrist_flex_deg,
    )
    sensor = dataclasses.replace(
        cfg.base.sensor,
        noise_std_at_1m_mm=_uniform(rng, cfg.noise_std_at_1m_mm),
        quant_step_at_1m_mm=_uniform(rng, cfg.quant_step_at_1m_mm),
        edge_dropout=_uniform(rng, cfg.edge_dropout),
        holes_per_frame=_uniform(rng, cfg.holes_per_frame),
    )
    return dataclasses.replace(cfg.base, sampler=sampler, sensor=sensor)


def render_chunk(seed: int, index: int, cfg: RandomizeConfig) -> dict[str, np.ndarray]:
    """At least `cfg.chunk_frames` frames (whole batches of the generator) as store fields."""
    rng = np.random.default_rng([seed, index])
    gen = chunk_config(rng, cfg)
    convention, cam, crop = get_convention(gen.convention), get_camera(gen.convention), gen.crop()
    rows = []
    while len(rows) < cfg.chunk_frames:
        batch = render_batch(rng, gen.batch_frames, convention, cam, gen, windows=True)
        for (depth, origin), joints in zip(batch.frames(), batch.joints_xyz, strict=True):
            try:
                if rng.random() < cfg.palm_center_prob:
                    center_xyz = joints[convention.root].astype(np.float64)
                else:
                    center_xyz = uvd_to_xyz(detect_center(depth, cam, crop, origin), cam)
            except NoHandError:
                continue
            center_xyz = center_xyz + rng.normal(0.0, cfg.center_jitter_mm, 3)
            com = xyz_to_uvd(center_xyz, cam)
            image = crop_depth(depth, com, cam, crop, origin)
            if (image >= 1.0).all():
                continue
            rows.append((image[None], joints, xyz_to_uvd(joints, cam), com))
    names = ("depth", "joints_xyz", "joints_uvd", "com_uvd")
    return {k: np.stack(v).astype(np.float32) for k, v in zip(names, zip(*rows, strict=True), strict=True)}


def _render_task(args: tuple[int, int, RandomizeConfig]) -> dict[str, np.ndarray]:
    return render_chunk(*args)


def iter_randomized_frames(
    n: int, seed: int, cfg: RandomizeConfig, workers: int = 1
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of store fields, `n` frames in all, rendered by `workers` processes in seeded chunks."""
    if n <= 0:
        raise ValueError(f"number of frames must be positive, got {n}")
    tasks = [(seed, i, cfg) for i in range(-(-n // cfg.chunk_frames))]
    left = n
    if workers <= 1:
        chunks: Iterator[dict[str, np.ndarray]] = map(_render_task, tasks)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn").Pool(workers)
        chunks = pool.imap(_render_task, tasks)
    try:
        for chunk in chunks:
            chunk = {k: v[:left] for k, v in chunk.items()}
            left -= len(chunk["depth"])
            yield chunk
    finally:
        if pool is not None:
            pool.terminate()


def generate_randomized(
    out: str | Path,
    n: int,
    seed: int,
    cfg: RandomizeConfig = RandomizeConfig(),
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write `n` domain-randomised frames to the store `out` (atomically)."""
    gen = cfg.base
    convention, cam, crop = get_convention(gen.convention), get_camera(gen.convention), gen.crop()
    attrs = {"source": "synthetic-randomized", "generator_version": GENERATOR_VERSION, "seed": int(seed),
             "randomize": json.dumps(dataclasses.asdict(cfg))}  # fmt: skip
    with (
        StoreWriter(out, convention, cam, crop, attrs, overwrite=overwrite) as writer,
        tqdm(total=n, desc=f"generate {Path(out).name}", unit="frame", disable=not progress) as bar,
    ):
        for chunk in iter_randomized_frames(n, seed, cfg, workers):
            writer.append(**chunk)
            bar.update(len(chunk["depth"]))
    return Path(out)
