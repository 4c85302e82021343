"""`crossingnets pipeline`: the bundled model's whole recipe in one resumable command.

The release model needs stores of different hands for different stages (domain-randomised hands
facing the camera and from every side for the VAE and the posterior; the renderer's own hands for
the generator, whose drawings are compared with renders of the same poses) and one training stage
after the other, each `--init` from the last. This runs them in order as subprocesses (`generate`,
then `train --stage S` under torchrun with one single-threaded process per core), writes
`OUT/pipeline.json` (its settings, and the wall time of every finished step) after each step, and
on a second call skips the finished steps and `--resume`s an interrupted stage. The model's
`config.json` gets the same record (metadata `pipeline`).

Layout: `OUT/data/NAME.h5` (stores), `OUT/STAGE/` (one run folder per stage); the model is
`OUT/<last stage>/model`.
"""

from __future__ import annotations

import argparse
import json
import os
import reprlib
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from crossingnets.checkpoint import add_pretrained_metadata
from crossingnets.files import write_json
from crossingnets.models import model_config
from crossingnets.recipes import train_config
from crossingnets.trainer import CHECKPOINT_FILE

STATE_FILE = "pipeline.json"


@dataclass(frozen=True)
class StoreSpec:
    """A store the pipeline renders with `crossingnets generate`."""

    name: str
    frames: int
    seed: int
    randomize: bool = True  # domain-randomised hands, sensors and crop centres
    max_palm_tilt_deg: float = 90.0  # 180: hands seen from every side, the back too


@dataclass(frozen=True)
class StageSpec:
    """One `crossingnets train --stage` run, on the named stores, from the previous stage's weights."""

    stage: str
    data: tuple[str, ...]
    flags: tuple[str, ...] = ()  # further `crossingnets train` flags of this stage


@dataclass(frozen=True)
class PipelineConfig:
    train_preset: str  # crossingnets.recipes.TRAIN_PRESETS (and the model preset of that name)
    crop_px: int
    cube_mm: float
    stores: tuple[StoreSpec, ...]
    unlabeled: str  # the store every stage reads as the unlabeled pool
    stages: tuple[StageSpec, ...]
    render_workers: int = 2  # rendering processes of a randomised store


_SIDES = ("front", "every_side")
# Issue 11, bundle r5: every side of the hand from the start (session 7 found the back-of-hand
# views, a fifth of NYU's test poses, 35-60 mm off when the training hands all faced the camera).
_RELEASE = PipelineConfig(
    train_preset="release",
    crop_px=64,
    cube_mm=300.0,
    stores=(
        StoreSpec("front", 96_000, seed=11),
        StoreSpec("every_side", 72_000, seed=12, max_palm_tilt_deg=180.0),
        StoreSpec("renderer", 50_000, seed=2001, randomize=False),  # the generator draws these
        # and these, seen from every side (session 15: trained on the first alone, the kinematic
        # generator's joints lay 8.6 mm from NYU's test poses, 3.8 from the synthetic test's)
        StoreSpec("renderer_every_side", 50_000, seed=2002, randomize=False, max_palm_tilt_deg=180.0),
        StoreSpec("pool", 8_000, seed=13, max_palm_tilt_deg=180.0),
    ),
    unlabeled="pool",
    stages=(
        # Under two processes 4 epochs are 5,144 steps, and their moving average lagged the
        # weights (3.19 mm against 2.58 on validation poses): twice the epochs, no average.
        StageSpec("vae", _SIDES, ("--epochs-vae", "8", "--ema-decay", "0")),
        StageSpec("render", ("renderer", "renderer_every_side"), ("--rotate-deg", "0")),
        StageSpec("posterior", _SIDES),
        StageSpec("adversarial", _SIDES),
    ),
)
PIPELINES: dict[str, PipelineConfig] = {
    "release": _RELEASE,
    "tiny": replace(  # for tests: the release's steps in seconds (tiny-release has no render epoch)
        _RELEASE,
        train_preset="tiny-release",
        crop_px=32,
        stores=tuple(replace(s, frames=min(s.frames, 48)) for s in _RELEASE.stores),
        stages=tuple(
            replace(st, flags=(*st.flags, "--epochs-render", "1")) if st.stage == "render" else st
            for st in _RELEASE.stages
        ),
        render_workers=1,
    ),
}


@dataclass(frozen=True)
class Step:
    name: str  # "data/NAME" or the stage
    output: Path  # the store, or the stage's run folder
    argv: tuple[str, ...]  # the `crossingnets` arguments that make it
    distributed: bool  # a training stage: run under torchrun when procs > 1


def plan(cfg: PipelineConfig, out: Path) -> list[Step]:
    """The pipeline's steps in order: its stores, then its stages, each from the one before."""
    store = {s.name: out / "data" / f"{s.name}.h5" for s in cfg.stores}
    steps = []
    for s in cfg.stores:
        argv = ["generate", "-n", str(s.frames), "--seed", str(s.seed), "--crop-px", str(cfg.crop_px),
                "--cube-mm", str(cfg.cube_mm), "--max-palm-tilt-deg", str(s.max_palm_tilt_deg),
                "--out", str(store[s.name])]  # fmt: skip
        if s.randomize:
            argv += ["--randomize", "--workers", str(cfg.render_workers)]
        steps.append(Step(f"data/{s.name}", store[s.name], tuple(argv), distributed=False))
    init: Path | None = None
    for st in cfg.stages:
        run = out / st.stage
        argv = ["train", "--preset", cfg.train_preset, "--stage", st.stage, "--out", str(run),
                "--data", *(str(store[n]) for n in st.data), "--unlabeled", str(store[cfg.unlabeled]),
                *st.flags]  # fmt: skip
        if init is not None:
            argv += ["--init", str(init)]
        steps.append(Step(st.stage, run, tuple(argv), distributed=True))
        init = run
    return steps


def command(step: Step, procs: int, resume: bool) -> list[str]:
    """The subprocess of a step: an unfinished stage with a checkpoint continues with `--resume`
    (its saved settings), an unfinished store is rendered again (`--overwrite`: writes are atomic,
    so a store under its name is whole, but the pipeline has not recorded it)."""
    argv = list(step.argv)
    if step.distributed and resume:
        argv = ["train", "--resume", "--out", str(step.output)]
    elif not step.distributed and step.output.exists():
        argv.append("--overwrite")
    if step.distributed and procs > 1:
        torchrun = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
        return [sys.executable, *torchrun, "-m", "crossingnets.cli", *argv]
    return [sys.executable, "-m", "crossingnets.cli", *argv]


def settings(preset: str, procs: int) -> dict[str, Any]:
    """What decides a pipeline's outputs, as saved in JSON: its steps, and the training and model
    presets its stages read (a preset changed in the code must not pass for the recorded one)."""
    cfg = PIPELINES[preset]
    return json.loads(json.dumps({
        "preset": preset, "procs": procs, "config": asdict(cfg),
        "train_preset": asdict(train_config(cfg.train_preset)),
        "model_preset": model_config(cfg.train_preset).to_dict(),
    }))  # fmt: skip


def _differences(old: Any, new: Any, name: str = "") -> list[str]:
    """Dotted names of the entries where two JSON trees differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [*old, *(k for k in new if k not in old)]
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{name}.{k}".lstrip("."))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in _differences(a, b, f"{name}[{i}]")
        ]
    return [] if old == new else [f"{name}: {reprlib.repr(old)} -> {reprlib.repr(new)}"]


def _load_state(path: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The recorded state of a pipeline folder made with the `wanted` settings (a fresh one if none)."""
    if not path.exists():
        return {"settings": wanted, "steps": {}}
    state = json.loads(path.read_text())
    if state.get("settings") != wanted:
        changed = _differences(state.get("settings"), wanted)
        raise SystemExit(
            f"crossingnets pipeline: {path} records other settings ({'; '.join(changed[:6])}"
            f"{'; ...' if len(changed) > 6 else ''}): choose another --out, or pass the --preset and "
            "--procs it was made with under the code it was made with"
        )
    return state


def run_pipeline(preset: str, out: str | os.PathLike, procs: int = 2) -> dict[str, Any]:
    """Run (or continue) pipeline `preset` in folder `out`; returns its state (settings, wall time
    per step, the model's folder)."""
    cfg, out = PIPELINES[preset], Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    state = _load_state(out / STATE_FILE, settings(preset, procs))
    steps = plan(cfg, out)
    # One thread per process: two single-threaded processes beat one two-threaded one for these
    # small convolutions (1.57x measured in session 7).
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if procs > 1 else None
    for i, step in enumerate(steps, 1):
        if step.name in state["steps"]:
            continue
        resume = step.distributed and (step.output / CHECKPOINT_FILE).exists()
        print(f"[pipeline {i}/{len(steps)}] {step.name}{' (resumed)' if resume else ''}", flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(command(step, procs, resume), env=env)
        if done.returncode != 0:
            raise SystemExit(f"crossingnets pipeline: step {step.name} failed (exit {done.returncode}); "
                             f"run the same command again to continue")  # fmt: skip
        wall_s = time.perf_counter() - t0
        state["steps"][step.name] = {"wall_s": round(wall_s, 1), "resumed": resume}
        state["wall_s"] = round(sum(s["wall_s"] for s in state["steps"].values()), 1)
        write_json(out / STATE_FILE, state)
    state["model"] = str(steps[-1].output / "model")
    write_json(out / STATE_FILE, state)
    # The model's own record of how it was made: the settings and each step's wall time.
    add_pretrained_metadata(state["model"], pipeline={k: state[k] for k in ("settings", "steps", "wall_s")})
    return state


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="pipeline folder: its stores, one run folder per stage")
    p.add_argument("--preset", default="release", choices=sorted(PIPELINES), help="which pipeline")
    p.add_argument(
        "--procs", type=int, default=2,
        help="training processes (torchrun, one thread each); the batch is per process, so this is part of the recipe",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the steps' commands and stop")


def main(args: argparse.Namespace) -> int:
    if args.procs < 1:
        raise SystemExit(f"crossingnets pipeline: --procs must be >= 1, got {args.procs}")
    if args.dry_run:
        for step in plan(PIPELINES[args.preset], Path(args.out)):
            print(" ".join(command(step, args.procs, resume=False)))
        return 0
    state = run_pipeline(args.preset, args.out, args.procs)
    print(json.dumps({"model": state["model"], "wall_s": state["wall_s"]}))
    return 0
