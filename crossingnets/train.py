"""`crossingnets train`: the staged semi-supervised training of a Crossing Net, or a baseline.

Stages are the model's (crossingnet: `vae`, `gan`, `joint`; scratch: `vae`, `supervised`;
deepprior: `supervised`); the loop is `crossingnets.trainer`, the config and its presets
`crossingnets.recipes`. Every TrainConfig field is a flag (`--batch-size 32`; booleans as
`--bf16` / `--no-bf16`, `--use-smo` / `--no-smo`).

Semi-supervised: `label_fraction` keeps the labels of a seeded subset of the training frames;
every training frame's depth image (plus an optional unlabeled store) feeds the GAN's real side.
Runs under `torchrun --nproc_per_node N` (one process per device).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

import torch
import torch.distributed as dist

from crossingnets.checkpoint import CONFIG_FILE, load_training_state
from crossingnets.data.store import read_info
from crossingnets.data.training import load_data
from crossingnets.distributed import Dist, process_group
from crossingnets.files import write_json
from crossingnets.models import (
    GAN_LOSSES,
    GEN_ARCHS,
    MODELS,
    CrossingNetConfig,
    LatentPoseModel,
    model_config,
)
from crossingnets.recipes import TRAIN_PRESETS, TrainConfig, data_options, train_config
from crossingnets.trainer import CHECKPOINT_FILE, Trainer


def _load_init(path: str | os.PathLike) -> tuple[str, CrossingNetConfig, dict[str, torch.Tensor]]:
    """Model kind, config and weights from a run folder, a training checkpoint or released weights."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file() and not (path / CHECKPOINT_FILE).is_file():
        model = LatentPoseModel.from_pretrained(path)
        return model.kind, model.config, model.state_dict()
    state = load_training_state(path / CHECKPOINT_FILE if path.is_dir() else path)
    return state["train_config"]["model"], CrossingNetConfig.from_dict(state["model_config"]), state["model"]


def _init_model(
    kind: str, mcfg: CrossingNetConfig, weights: dict[str, torch.Tensor], new_generator: dict[str, Any] | None
) -> LatentPoseModel:
    """The init's model with its weights, or with a fresh generator of the `new_generator` fields."""
    if not new_generator:
        model = MODELS[kind](mcfg)
        model.load_state_dict(weights, strict=True)
        return model
    if kind != "crossingnet":
        raise ValueError(f"--new-generator: a {kind} model has no generator")
    model = MODELS[kind](replace(mcfg, **new_generator))
    kept = {k: v for k, v in weights.items() if not k.startswith("generator.")}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith("generator.") for k in missing):
        raise ValueError(
            f"--init weights do not fit the model outside its generator: {unexpected or missing}"
        )
    return model


def _new_model(
    cfg: TrainConfig, store_path: str, init: str | os.PathLike | None, new_generator: dict[str, Any] | None
) -> torch.nn.Module:
    """A fresh model for the store's convention and crop, or the `init` weights (checked to fit)."""
    info = read_info(store_path)
    store = {"convention": info.convention.name, "crop_px": info.crop.crop_px, "cube_mm": info.crop.cube_mm}
    if init is None:
        return MODELS[cfg.model](model_config(cfg.preset, **store))
    kind, mcfg, weights = _load_init(init)
    if kind != cfg.model or any(getattr(mcfg, k) != v for k, v in store.items()):
        raise ValueError(f"--init {init} holds a {kind} model for {mcfg.convention}/{mcfg.crop_px} px; "
                         f"this run trains a {cfg.model} on {store}")  # fmt: skip
    return _init_model(kind, mcfg, weights, new_generator)


@contextlib.contextmanager
def _run_folder(out: Path, ddp: Dist) -> Iterator[None]:
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
    if ddp.world > 1:
        dist.barrier()
    yield


def train(
    cfg: TrainConfig,
    data: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    unlabeled: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    init: str | os.PathLike | None = None,
    pseudo: str | os.PathLike | None = None,
    new_generator: dict[str, Any] | None = None,
    device: str = "auto",
    max_steps: int | None = None,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Train a new run in folder `out` (which must not hold a checkpoint); returns a summary dict
    (`finished`, `global_step`, last `val_mm`). `new_generator` (with `init`): model config fields
    of a fresh generator (`gen_arch`, `gen_width`) that replaces the init's; every other weight loads."""
    out = Path(out)
    if (out / CHECKPOINT_FILE).exists():
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    paths: dict[str, Any] = {
        k: None if v is None else str(v)
        for k, v in (("unlabeled", unlabeled), ("val", val), ("init", init), ("pseudo", pseudo))
    }
    stores = [str(data)] if isinstance(data, str | os.PathLike) else [str(p) for p in data]
    paths["data"] = stores[0] if len(stores) == 1 else stores  # one store: as runs always recorded it
    with process_group(device) as ddp:
        torch.manual_seed(cfg.seed)
        model = _new_model(cfg, stores[0], init, new_generator)
        d = load_data(stores, unlabeled, val, model.config.pose_unit_mm, **data_options(cfg), pseudo=pseudo)
        with _run_folder(out, ddp):
            if ddp.main:
                meta = {"train_config": asdict(cfg), "model_kind": cfg.model, "model_config": model.config.to_dict(), "paths": paths,
                        "num_train": len(d.train), "num_labeled": len(d.labeled), "num_images": len(d.images),
                        "num_val": 0 if d.val is None else len(d.val), "world_size": ddp.world}  # fmt: skip
                write_json(out / CONFIG_FILE, meta)
            trainer = Trainer(cfg, d, out, model, ddp, paths, progress, tensorboard)
            return trainer.run(max_steps)


def resume(
    out: str | os.PathLike,
    *,
    device: str = "auto",
    max_steps: int | None = None,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Continue the run in folder `out` from its last checkpoint, with its saved configs and stores."""
    out = Path(out)
    state = load_training_state(out / CHECKPOINT_FILE)
    cfg = TrainConfig(**state["train_config"])
    paths = state["paths"]
    with process_group(device) as ddp:
        model = MODELS[cfg.model](CrossingNetConfig.from_dict(state["model_config"]))
        d = load_data(paths["data"], paths["unlabeled"], paths["val"], model.config.pose_unit_mm,
                      **data_options(cfg), pseudo=paths.get("pseudo"))  # fmt: skip
        trainer = Trainer(cfg, d, out, model, ddp, paths, progress, tensorboard)
        trainer.load_state_dict(state)
        return trainer.run(max_steps)


# ---------------------------------------------------------------------------------------------
# CLI: one flag per TrainConfig field, its comment as help

_CHOICES: dict[str, Any] = {
    "model": sorted(MODELS),
    "preset": sorted(TRAIN_PRESETS),
    "stage": ["all", *dict.fromkeys(s for m in MODELS.values() for s in m.stages)],
    "gan_loss": GAN_LOSSES,
}
# Flags that name stores or weights, not config fields.
_PATHS = ("data", "unlabeled", "val", "init", "pseudo")


def _field_comments(cls: type) -> dict[str, str]:
    """The trailing comment of each field line (`name: type = default  # comment`) of a dataclass
    and its dataclass bases."""
    comments: dict[str, str] = {}
    for c in reversed(cls.__mro__):
        if is_dataclass(c):
            comments.update(re.findall(r"^    (\w+): [^#\n]+#\s*(.+)$", inspect.getsource(c), re.MULTILINE))
    return comments


def _flag(name: str, value: Any = True) -> str:
    """The flag that sets field `name` to `value`: booleans `--bf16` / `--no-bf16`, `--use-smo` / `--no-smo`."""
    dashed = name.replace("_", "-")
    return f"--{dashed}" if value is not False else f"--no-{dashed.removeprefix('use-')}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", nargs="+", help="training store(s) (.h5); several are concatenated")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--unlabeled", help="extra store of depth images used without their labels")
    p.add_argument(
        "--pseudo", help="store of pseudo-labelled frames (crossingnets pseudo-label), trained on as labelled"
    )
    p.add_argument("--val", help="validation store (default: hold out --val-fraction of --data)")
    p.add_argument(
        "--init", help="start from these weights (run folder, checkpoint.pt or released model folder)"
    )
    p.add_argument(
        "--new-generator",
        choices=GEN_ARCHS,
        help="with --init: replace its generator by a fresh one of this architecture (train it with --stage render)",
    )
    p.add_argument(
        "--new-generator-width", type=int, help="with --new-generator: its width (default: the init's)"
    )
    p.add_argument(
        "--new-generator-view",
        action="store_true",
        help="with --new-generator skeleton: its keypoints also see the crop centre's direction (gen_view)",
    )
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")
    p.add_argument(
        "--max-steps", type=int, help="stop (with a checkpoint) after this many steps; --resume continues"
    )
    p.add_argument(
        "--tensorboard", action="store_true", help="also log to OUT/tensorboard (needs tensorboard)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    config = p.add_argument_group("training config (default: the --preset's)")
    comments, types = _field_comments(TrainConfig), get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if types[f.name] is bool:
            pair = config.add_mutually_exclusive_group()
            pair.add_argument(
                _flag(f.name), dest=f.name, action="store_const", const=True, help=comments[f.name]
            )
            pair.add_argument(_flag(f.name, False), dest=f.name, action="store_const", const=False)
        else:
            config.add_argument(
                _flag(f.name),
                dest=f.name,
                type=types[f.name],
                choices=_CHOICES.get(f.name),
                help=comments[f.name],
            )


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = _config_overrides(args)
    return train_config(overrides.pop("preset", "paper"), **overrides)


def main(args: argparse.Namespace) -> int:
    common = {
        "device": args.device,
        "max_steps": args.max_steps,
        "progress": not args.no_progress,
        "tensorboard": args.tensorboard,
    }
    if args.resume:
        given = [_flag(k, v) for k, v in _config_overrides(args).items()]
        given += [_flag(k) for k in _PATHS if getattr(args, k)]
        if given:
            raise SystemExit(
                f"crossingnets train --resume continues with the run's saved settings and stores; drop {', '.join(given)}"
            )
        summary = resume(args.out, **common)
    else:
        if args.data is None:
            raise SystemExit("crossingnets train: --data is required (unless --resume)")
        if (args.new_generator or args.new_generator_width or args.new_generator_view) and not args.init:
            raise SystemExit(
                "crossingnets train: --new-generator replaces the generator of --init; give --init"
            )
        if (args.new_generator_width or args.new_generator_view) and not args.new_generator:
            raise SystemExit("crossingnets train: --new-generator-width or -view needs --new-generator")
        new_generator = (
            {"gen_arch": args.new_generator, "gen_view": args.new_generator_view}
            if args.new_generator
            else None
        )
        if new_generator and args.new_generator_width:
            new_generator["gen_width"] = args.new_generator_width
        summary = train(
            config_from_args(args),
            args.data,
            args.out,
            unlabeled=args.unlabeled,
            val=args.val,
            init=args.init,
            pseudo=args.pseudo,
            new_generator=new_generator,
            **common,
        )
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line, not one per torchrun process
        print(json.dumps(summary))
    return 0
