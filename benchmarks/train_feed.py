"""A training loop fed by the renderer beside the same loop fed from memory, in one run.

The loop: the release network's posterior path (crop -> latent -> decoded joints, smooth-L1 on
the joints in pose units, AdamW), batch 64, the step the posterior stage spends most of its time
in. Fed (a) from memory: random batches of frames rendered beforehand, what training does today;
(b) by the renderer: fresh domain-randomised frames (`iter_randomized_frames`, the release data)
from `--workers` background processes, each frame used once. Also: the renderer alone, frames/s.
If (b) keeps (a)'s samples/s, training can draw fresh frames instead of reusing a fixed set.

    python benchmarks/train_feed.py --steps 60      # the last line is JSON
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator

import numpy as np
import torch

from crossingnets.camera import get_camera, uvd_to_xyz
from crossingnets.data.randomized import RandomizeConfig, iter_randomized_frames
from crossingnets.losses import joint_loss
from crossingnets.models import CrossingNet, model_config


def batches(chunks: Iterator[dict[str, np.ndarray]], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Store-field chunks -> batches of `batch_size` frames, in order."""
    held: dict[str, list[np.ndarray]] = {}
    count = 0
    for chunk in chunks:
        for k, v in chunk.items():
            held.setdefault(k, []).append(v)
        count += len(chunk["depth"])
        while count >= batch_size:
            merged = {k: np.concatenate(v) for k, v in held.items()}
            yield {k: v[:batch_size] for k, v in merged.items()}
            held = {k: [v[batch_size:]] for k, v in merged.items()}
            count -= batch_size


class PosteriorStep:
    """One optimiser step of crop -> joints on a batch of store fields."""

    def __init__(self, model: CrossingNet, lr: float = 1e-3) -> None:
        self.model = model.train()
        self.cam = get_camera(model.config.convention)
        self.unit = model.config.pose_unit_mm
        self.opt = torch.optim.AdamW(model.discriminator.parameters(), lr=lr, weight_decay=0.01)

    def __call__(self, batch: dict[str, np.ndarray]) -> float:
        centre = uvd_to_xyz(batch["com_uvd"].astype(np.float64), self.cam)[:, None]
        target = torch.as_tensor((batch["joints_xyz"] - centre) / self.unit, dtype=torch.float32)
        joints = self.model.decode_latent_units(self.model.estimate_latent(torch.as_tensor(batch["depth"])))
        loss = joint_loss(joints, target, beta=0.02)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def steps_per_s(step: PosteriorStep, feed: Iterator[dict[str, np.ndarray]], steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step(next(feed))
    t = time.perf_counter()
    for _ in range(steps):
        step(next(feed))
    return steps / (time.perf_counter() - t)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="timed steps per feed")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--memory-frames", type=int, default=2048, help="frames rendered beforehand for (a)")
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="renderer processes feeding (b); 1 renders in-line",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads of the training loop")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = RandomizeConfig()
    model = CrossingNet(
        model_config("release", convention="nyu", crop_px=cfg.base.crop_px, cube_mm=cfg.base.cube_mm)
    )
    step = PosteriorStep(model)
    n_fresh = (args.steps + args.warmup) * args.batch_size

    t = time.perf_counter()
    chunks = list(iter_randomized_frames(args.memory_frames, args.seed, cfg))
    render_fps = args.memory_frames / (time.perf_counter() - t)
    memory = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    rng = np.random.default_rng(args.seed)

    def from_memory() -> Iterator[dict[str, np.ndarray]]:
        while True:
            idx = rng.integers(0, args.memory_frames, args.batch_size)
            yield {k: v[idx] for k, v in memory.items()}

    feeds = {"memory": from_memory()}
    for w in args.workers:
        fresh = iter_randomized_frames(n_fresh, args.seed + w, cfg, w)
        feeds[f"renderer_{w}_workers"] = batches(fresh, args.batch_size)
    rates = {}
    for name, feed in feeds.items():
        rates[name] = round(args.batch_size * steps_per_s(step, feed, args.steps, args.warmup), 1)
        print(f"{name}: {rates[name]} samples/s", flush=True)
        getattr(feed, "close", lambda: None)()  # stops a feed's worker processes
    result = {
        "benchmark": "train_feed",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "threads": args.threads,
        "workers": args.workers,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "renderer_alone_frames_per_s": round(render_fps, 1),
        "samples_per_s": rates,
        "renderer_fed_over_memory": {
            k: round(v / rates["memory"], 3) for k, v in rates.items() if k != "memory"
        },
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
