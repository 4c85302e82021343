"""Training speed: samples/s of each stage of the paper-size Crossing Net on the CPU, or of the
release stages (`--preset release`, 64 px crops).

Self-contained: writes a temporary store of random crops, then times `Trainer.train_step`
for each stage (paper: fp32 and channels_last by default; bf16 autocast variants on request;
release: the trainer's fused optimisers against the per-tensor loop, for each discriminator stem).
Prints one JSON line at the end.

    python benchmarks/train.py --threads 2 --steps 3
    python benchmarks/train.py --variants fp32 bf16 --steps 2   # on a CPU with AMX
    python benchmarks/train.py --preset release --threads 1 --steps 20 --warmup 3
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
# The release stages: (discriminator stem, optimiser kernel); "loop" is torch's per-tensor AdamW.
RELEASE_VARIANTS = {
    "fused": ("strided", True),
    "loop": ("strided", False),
    "full_stem": ("full", True),
    "residual_stem": ("residual", True),
}


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


def time_stage(trainer: Trainer, stage: str, steps: int, warmup: int, fused: bool = True) -> float:
    trainer.start_stage(stage)
    trainer.ema = {}  # a stage's average follows its own parameters (the run swaps it in at the end)
    if not fused:  # the same optimisers with the per-tensor loop
        trainer.optimizers = {
            k: type(o)(
                [{"params": g["params"]} for g in o.param_groups],  # the groups hold `fused`
                lr=o.defaults["lr"],
                betas=o.defaults["betas"],
                weight_decay=o.defaults["weight_decay"],
                foreach=False,
            )
            for k, o in trainer.optimizers.items()
        }
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
    p.add_argument("--rounds", type=int, default=2, help="release: the variants in turn this many times")
    p.add_argument(
        "--variants", nargs="+", help=f"paper: {sorted(VARIANTS)}; release: {sorted(RELEASE_VARIANTS)}"
    )
    p.add_argument("--preset", choices=["paper", "release"], default="paper")
    return p


def release_speeds(args: argparse.Namespace, store: Path, tmp: Path) -> dict[str, dict[str, float]]:
    """Samples/s of the release posterior and adversarial steps per variant, the variants in turn
    `--rounds` times (the best round kept), so a neighbour's load falls on all of them alike."""
    best: dict[str, dict[str, float]] = {}
    for r in range(args.rounds):
        for name in args.variants or list(RELEASE_VARIANTS):
            stem, fused = RELEASE_VARIANTS[name]
            cfg = train_config("release", batch_size=args.batch_size, val_fraction=0.0)
            torch.manual_seed(0)
            data = load_data([store], store, None, 50.0, **data_options(cfg))
            model = MODELS["crossingnet"](model_config("release", convention="nyu", crop_px=64, stem=stem))
            trainer = Trainer(cfg, data, tmp / f"{name}{r}", model, Dist(), {}, progress=False)
            got = {
                s: time_stage(trainer, s, args.steps, args.warmup, fused)
                for s in ("posterior", "adversarial")
            }
            best[name] = {s: round(max(v, best.get(name, {}).get(s, 0.0)), 1) for s, v in got.items()}
            print(name, f"round {r + 1}", {s: round(v, 1) for s, v in got.items()}, flush=True)
    return best


def paper_speeds(args: argparse.Namespace, store: Path, tmp: Path) -> dict[str, dict[str, float]]:
    """Samples/s of the paper network's vae, gan and joint stages, per variant."""
    results = {}
    for name in args.variants or DEFAULT_VARIANTS:
        cfg = train_config(
            "paper", batch_size=args.batch_size, warmup_steps=0, val_fraction=0.0, **VARIANTS[name]
        )
        torch.manual_seed(0)
        data = load_data(store, None, None, 50.0, **data_options(cfg))
        model = MODELS["crossingnet"](model_config("paper", convention="nyu"))
        trainer = Trainer(cfg, data, tmp / name, model, Dist(), {}, progress=False)
        results[name] = {
            s: round(time_stage(trainer, s, args.steps, args.warmup), 1) for s in ("vae", "gan", "joint")
        }
        print(name, results[name], flush=True)
    return results


def main(args: argparse.Namespace) -> dict:
    known = RELEASE_VARIANTS if args.preset == "release" else VARIANTS
    if unknown := set(args.variants or ()) - set(known):
        raise SystemExit(
            f"unknown {args.preset} variants {sorted(unknown)}; expected some of {sorted(known)}"
        )
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.preset == "release":
            store = random_store(Path(tmp) / "bench.h5", 4 * args.batch_size, crop_px=64)
            results = release_speeds(args, store, Path(tmp))
        else:  # the paper's networks read the store's default crops
            results = paper_speeds(args, random_store(Path(tmp) / "bench.h5", 2 * args.batch_size), Path(tmp))
    result = {"benchmark": "train", "preset": args.preset, "threads": args.threads, "batch_size": args.batch_size,
              "steps": args.steps, "samples_per_s": results}  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
