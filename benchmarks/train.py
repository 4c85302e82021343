"""Training speed: samples/s of each stage of the paper-size Crossing Net on the CPU.

Self-contained: writes a temporary store of random 128x128 crops, then times `Trainer.train_step`
for each stage (fp32 and channels_last by default; bf16 autocast variants on request). Prints one
JSON line at the end.

    python benchmarks/train.py --threads 2 --steps 3
    python benchmarks/train.py --variants fp32 bf16 --steps 2   # on a CPU with AMX
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from crossingnets.camera import CAMERAS, xyz_to_uvd
from crossingnets.data.preprocess import CropConfig
from crossingnets.data.store import StoreWriter
from crossingnets.data.training import load_data
from crossingnets.distributed import Dist
from crossingnets.hand.conventions import get_convention
from crossingnets.models import MODELS, model_config
from crossingnets.train import Trainer, data_options, train_config

VARIANTS = {
    "fp32": {},
    "channels_last": {"channels_last": True},
    "bf16": {"bf16": True},
    "bf16_channels_last": {"bf16": True, "channels_last": True},
}
# bf16 only pays on CPUs with native bf16 (AMX, AVX512-BF16); elsewhere it is emulated, ~10x slower.
DEFAULT_VARIANTS = ["fp32", "channels_last"]


def random_store(path: Path, frames: int, crop_px: int = 128, convention: str = "nyu") -> Path:
    rng = np.random.default_rng(0)
    conv, cam = get_convention(convention), CAMERAS[convention]
    joints = rng.normal(0, 40, (frames, conv.num_joints, 3)) + [0, 0, 600]
    with StoreWriter(path, conv, cam, CropConfig(250.0, crop_px), {"source": "benchmark"}) as w:
        w.append(
            depth=rng.uniform(-1, 1, (frames, 1, crop_px, crop_px)),
            joints_xyz=joints,
            joints_uvd=xyz_to_uvd(joints, cam),
            com_uvd=xyz_to_uvd(joints.mean(1), cam),
        )
    return path


def time_stage(trainer: Trainer, stage: str, steps: int, warmup: int) -> float:
    trainer.start_stage(stage)
    for _ in range(warmup):
        trainer.train_step(stage)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(stage)
    return steps * trainer.cfg.batch_size / (time.perf_counter() - t0)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="timed steps per stage and variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    return p


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = random_store(Path(tmp) / "bench.h5", 2 * args.batch_size)
        for name in args.variants:
            cfg = train_config(
                "paper", batch_size=args.batch_size, warmup_steps=0, val_fraction=0.0, **VARIANTS[name]
            )
            torch.manual_seed(0)
            data = load_data(store, None, None, 50.0, **data_options(cfg))
            model = MODELS["crossingnet"](model_config("paper", convention="nyu"))
            trainer = Trainer(cfg, data, Path(tmp) / name, model, Dist(), {}, progress=False)
            results[name] = {
                s: round(time_stage(trainer, s, args.steps, args.warmup), 1) for s in ("vae", "gan", "joint")
            }
            print(name, results[name], flush=True)
    result = {"benchmark": "train", "threads": args.threads, "batch_size": args.batch_size,
              "steps": args.steps, "samples_per_s": results}  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
