"""`crossingnets adapt`: fine-tune a released model to your depth sensor with your own unlabeled frames.

The Crossing Net's semi-supervised path (paper Sec. 3.4; the release recipe's `adversarial` stage):
your frames are the real side of the GAN while labelled synthetic frames keep the pose (posterior
head, L_pos, L_smo). Four steps, each written atomically into `--out`, so an interrupted run
continues where it stopped (`--resume`):

1. `frames.h5`: your frames (files, folders, globs, .npy sequences, as `predict` reads them, with
   their camera, depth unit and handedness) -> the crops the model reads, by its own detection and
   palm re-crop (a left hand mirrored, as the model sees it). The trainer draws the GAN's real side
   evenly from the training crops and this store, so each crop is stored repeated until your
   frames make `user_share` of it. Their joints are the model's estimates, never read.
2. `synthetic.h5`: `synthetic_frames` evenly spaced frames of the labelled synthetic store (`--data`,
   the kind the model was trained on); one epoch is these / batch size steps.
3. `run/`: `crossingnets train --stage adversarial --init CHECKPOINT` on the two (`AdaptConfig`: a
   short one-cycle schedule at a small learning rate, a moving average of the weights).
4. `model/`: the adapted weights, released (`crossingnets predict --checkpoint OUT/model`), with
   batch-norm statistics re-estimated on the synthetic crops alone. The trainer re-estimates them
   on the GAN's real side, and other frames in those statistics cost the bundled model on the
   independent renderer's frames (`benchmarks/second_renderer.py`): 27.1 mm with synthetic crops
   alone, 28.3 with 10 % of its frames, 30.1 with 25 %, 35.6 with half (500 held-out frames,
   2,048 crops each; on its frames alone, AdaBN, 53-69 mm).

What it buys (`benchmarks/adapt.py`, 500 frames of the independent renderer to adapt on, 500 to
test, through `predict`): the r3 bundle 26.08 -> 25.89 mm, the r2 bundle 26.4 -> 26.1, and exactly
as much without the frames (`--user-share 0`): the gain is the short fine-tuning's. The discriminator tells renders from any
real crop at once (its GAN loss is 0.005 in this stage), so the real side sends the trunk almost
no gradient.

No consistency term on your crops: distilling the model's rotation-averaged estimate (in-plane
+-20 deg) could gain at most what averaging gains at test time, 0.5 mm on the independent
renderer's frames (27.4 -> 26.8) and more on our own (17.2 -> 16.5); in 100 steps, four variants
(its own or a frozen teacher, batch norm in train or eval mode) left the error on those frames at
27.4 mm or raised it (to 28.0, or diverged). What the model gets wrong on other hands is not
inconsistency (measured on the r2 bundle, issue 13).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm import tqdm

from crossingnets.camera import CUSTOM
from crossingnets.checkpoint import load_latent_stats, read_pretrained_config
from crossingnets.data.preprocess import NoHandError
from crossingnets.data.store import FIELDS, StoreWriter, read_info
from crossingnets.data.training import load_data
from crossingnets.files import write_json
from crossingnets.inference import HandPoseEstimator, Prediction, resolve_model_folder
from crossingnets.models import LatentPoseModel
from crossingnets.models.batchnorm import recompute_running_stats
from crossingnets.predict import FrameRef, add_frame_arguments, expand_inputs, read_frames
from crossingnets.recipes import TrainConfig, data_options, train_config
from crossingnets.train import resume, train
from crossingnets.trainer import CHECKPOINT_FILE
from crossingnets.validation import validate

log = logging.getLogger(__name__)

SETTINGS_FILE = "adapt.json"
FRAMES_STORE = "frames.h5"
SYNTHETIC_STORE = "synthetic.h5"
RUN_FOLDER = "run"
MODEL_FOLDER = "model"


@dataclass(frozen=True)
class AdaptConfig:
    """The adaptation: one short adversarial stage from the released weights."""

    train_preset: str = "release"  # TrainConfig preset: loss weights, batch size, optimiser
    synthetic_frames: int = 16384  # labelled frames of --data, evenly spaced (release: 250 steps an epoch)
    epochs: int = 1  # adversarial epochs over them
    lr: float = 1e-4  # peak of the one-cycle learning rate (the release's adversarial stage: 3e-4)
    ema_decay: float = 0.99  # moving average swapped in at the end (release: 0.999, over 7x the steps)
    user_share: float = 0.5  # your crops' share of the GAN's real side (0: fine-tune on synthetic only)
    seed: int = 0  # batches, noise and the validation split of the synthetic frames

    def __post_init__(self) -> None:
        if self.synthetic_frames < 2 or self.epochs < 1 or self.lr <= 0:
            raise ValueError(
                f"synthetic_frames must be >= 2, epochs >= 1 and lr > 0; got {self.synthetic_frames}, "
                f"{self.epochs}, {self.lr}"
            )
        if not 0.0 <= self.user_share < 1.0:
            raise ValueError(f"user_share must be in [0, 1), got {self.user_share}")
        self.train_config()  # an unknown preset or a contradiction fails here, not after the crops

    def train_config(self) -> TrainConfig:
        """The training config of the stage: the preset's, with this schedule."""
        return train_config(
            self.train_preset,
            stage="adversarial",
            epochs_adversarial=self.epochs,
            lr_adversarial=self.lr,
            lr_schedule="onecycle",
            ema_decay=self.ema_decay,
            seed=self.seed,
        )


ADAPT_PRESETS: dict[str, AdaptConfig] = {
    "release": AdaptConfig(),
    "tiny": AdaptConfig(train_preset="tiny-release", synthetic_frames=24, ema_decay=0.5),  # tests: seconds
}


@dataclass(frozen=True)
class FrameSource:
    """Your frames and how to read them, as `crossingnets predict` takes them."""

    frames: tuple[str, ...]  # depth files, folders of them, quoted globs, stacked (N, H, W) .npy
    camera: str | None = None  # a preset, a camera file or "custom" (None: the model's dataset camera)
    intrinsics: tuple[float, float, float, float] | None = None  # custom fx, fy, cx, cy, px
    depth_unit: str = "mm"  # unit of the stored depth (crossingnets.data.depth_units)
    handedness: str = "right"  # a left hand is mirrored into the right hand the model knows


# ---------------------------------------------------------------------------------------------
# 1. Your frames -> crops


@dataclass(frozen=True)
class FrameCrops:
    """Crops of your frames as the model reads them (a left hand mirrored) and what cropped them."""

    crops: Prediction  # batched: crop (N, S, S), center_uvd (N, 3), the model's joints; one camera
    skipped: int  # frames without a hand in range


def crop_frames(
    estimator: HandPoseEstimator, refs: list[FrameRef], source: FrameSource, progress: bool = True
) -> FrameCrops:
    """Each frame through the model's own path (`predict_raw`: unit, camera, detection, palm re-crop)
    -> its crop in the model's (right-hand) frame. A frame without a hand in range is skipped (a
    capture has some); when every frame is, the first one's message (which names a likely depth
    unit) is raised."""
    camera = source.camera or (CUSTOM if source.intrinsics else estimator.convention.name)
    kept: list[Prediction] = []
    skipped: list[NoHandError] = []
    bar = tqdm(refs, desc="crop frames", unit="frame", disable=not progress)
    for ref, raw in zip(bar, read_frames(refs), strict=True):
        try:
            pred = estimator.predict_raw(
                raw, camera, source.intrinsics, depth_unit=source.depth_unit,
                handedness=source.handedness, name=f"depth image {ref.name}",
            )  # fmt: skip
        except NoHandError as err:
            log.warning("skipped: %s", err)
            skipped.append(err)
            continue
        kept.append(pred.mirrored(pred.camera.mirrored()) if source.handedness == "left" else pred)
    if not kept:
        raise ValueError(f"no hand in any of the {len(refs)} frames; the first: {skipped[0]}")
    cameras = {p.camera for p in kept}
    if len(cameras) > 1:
        raise ValueError(
            f"the frames have {len(cameras)} cameras ({sorted(map(str, cameras))}); adapt to one sensor at a time"
        )
    stacked = {
        f.name: np.stack([getattr(p, f.name) for p in kept]) for f in fields(Prediction) if f.name != "camera"
    }
    return FrameCrops(Prediction(**stacked, camera=kept[0].camera), len(skipped))


def repeats_for_share(share: float, frames: int, synthetic: int) -> int:
    """How many copies of `frames` crops make about `share` of a pool that also holds `synthetic`."""
    return max(1, round(share / (1.0 - share) * synthetic / frames))


def write_crops(
    path: Path, crops: FrameCrops, estimator: HandPoseEstimator, repeats: int, attrs: dict
) -> Path:
    """The crops as a store (`repeats` copies, in order), their joints the model's estimates."""
    c = crops.crops
    batch = {"depth": c.crop[:, None], "joints_xyz": c.joints_xyz_mm, "joints_uvd": c.joints_uvd,
             "com_uvd": c.center_uvd}  # fmt: skip
    meta = {
        "source": "adapt: your frames cropped by the model; joints are its estimates, not labels",
        "distinct_frames": len(c.crop),
        "repeats": repeats,
        "skipped_frames": crops.skipped,
        **attrs,
    }
    with StoreWriter(path, estimator.convention, c.camera, estimator.crop, meta) as w:
        for _ in range(repeats):
            w.append(**batch)
    return path


# ---------------------------------------------------------------------------------------------
# 2. The labelled synthetic frames


def write_subset(src: str | os.PathLike, dst: Path, count: int, block: int = 1024) -> Path:
    """`count` evenly spaced frames of store `src` (all of them if it holds fewer) as a new store."""
    info = read_info(src)
    idx = np.unique(np.linspace(0, info.num_frames - 1, min(count, info.num_frames)).round().astype(np.int64))
    meta = {"source": str(info.attrs.get("source", "")), "subset_of": str(src), "subset_frames": len(idx)}
    with h5py.File(src, "r") as f, StoreWriter(dst, info.convention, info.camera, info.crop, meta) as w:
        for s in tqdm(range(0, len(idx), block), desc="synthetic frames", unit="block", leave=False):
            w.append(**{k: f[k][idx[s : s + block]] for k in FIELDS})
    return dst


# ---------------------------------------------------------------------------------------------
# 3-4. Fine-tuning and the released model


def export_adapted(
    out: Path, cfg: TrainConfig, settings: dict[str, Any], device: str = "cpu"
) -> dict[str, float]:
    """The run's final weights with batch-norm statistics of the synthetic training crops (not the
    GAN's real side, see the module docstring) -> `out/model`; returns the validation errors."""
    run_model = out / RUN_FOLDER / MODEL_FOLDER
    model = LatentPoseModel.from_pretrained(run_model, device)
    data = load_data(out / SYNTHETIC_STORE, None, None, model.config.pose_unit_mm, **data_options(cfg))
    recompute_running_stats(
        model.depth_reader, data.train.depth, cfg.bn_frames, cfg.batch_size, torch.device(device)
    )
    val = {} if data.val is None else validate(model, data.val)
    metadata = {**read_pretrained_config(run_model).get("metadata", {}), **val, "adapted": settings}
    model.save_pretrained(out / MODEL_FOLDER, latent_stats=load_latent_stats(run_model), metadata=metadata)
    return val


def _run(
    out: Path, settings: dict[str, Any], *, device: str, max_steps: int | None, progress: bool
) -> dict[str, Any]:
    """Steps 1-4 of the module docstring, each skipped where its output is already there."""
    cfg, source = AdaptConfig(**settings["config"]), FrameSource(**settings["source"])
    checkpoint = settings["checkpoint"]
    tcfg = cfg.train_config()
    if not (out / SYNTHETIC_STORE).is_file():
        write_subset(settings["data"], out / SYNTHETIC_STORE, cfg.synthetic_frames)
    if cfg.user_share > 0 and not (out / FRAMES_STORE).is_file():
        estimator = HandPoseEstimator.from_pretrained(checkpoint)
        crops = crop_frames(estimator, expand_inputs(source.frames), source, progress)
        synthetic = read_info(out / SYNTHETIC_STORE).num_frames
        synthetic -= round(tcfg.val_fraction * synthetic)  # the trainer's validation frames are not drawn
        repeats = repeats_for_share(cfg.user_share, len(crops.crops.crop), synthetic)
        write_crops(out / FRAMES_STORE, crops, estimator, repeats, {"checkpoint": str(checkpoint)})
    run = out / RUN_FOLDER
    common = {"device": device, "max_steps": max_steps, "progress": progress}
    if (run / CHECKPOINT_FILE).is_file():
        summary = resume(run, **common)
    else:
        unlabeled = out / FRAMES_STORE if cfg.user_share > 0 else None
        summary = train(tcfg, out / SYNTHETIC_STORE, run, unlabeled=unlabeled, init=checkpoint, **common)
    if not summary["finished"]:
        return {**summary, "model": None}
    frames = read_info(out / FRAMES_STORE).attrs if cfg.user_share > 0 else {}
    settings = {**settings, "frames_used": frames.get("distinct_frames", 0),
                "frames_skipped": frames.get("skipped_frames", 0)}  # fmt: skip
    val = export_adapted(out, tcfg, settings)
    log.info("adapted model in %s", out / MODEL_FOLDER)
    return {**summary, **val, "model": str(out / MODEL_FOLDER)}


def adapt(
    checkpoint: str | os.PathLike,
    source: FrameSource,
    data: str | os.PathLike,
    out: str | os.PathLike,
    cfg: AdaptConfig = ADAPT_PRESETS["release"],
    *,
    device: str = "auto",
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Adapt the released model `checkpoint` to the sensor of `source`'s frames, with the labelled
    synthetic store `data`, in the new folder `out`; returns the training summary, the validation
    errors on synthetic frames and the path of the adapted model (None if `max_steps` stopped it)."""
    out = Path(out)
    if (out / SETTINGS_FILE).exists():
        raise FileExistsError(
            f"{out} already holds an adaptation; pass --resume to continue it or choose another --out"
        )
    folder = resolve_model_folder(checkpoint)
    model = read_pretrained_config(folder)["config"]
    info = read_info(data)
    wanted = (model["convention"], model["crop_px"], model["cube_mm"])
    if (info.convention.name, info.crop.crop_px, info.crop.cube_mm) != wanted:
        raise ValueError(
            f"--data {data} holds {info.convention.name} frames of {info.crop.crop_px} px crops of a "
            f"{info.crop.cube_mm:g} mm cube; the model {folder} reads {wanted[0]} {wanted[1]} px of {wanted[2]:g} mm: "
            "generate synthetic frames with its settings (crossingnets generate --crop-px --cube-mm)"
        )
    expand_inputs(source.frames)  # a missing file or an empty folder fails now, not after the subset
    settings = {"checkpoint": str(folder), "data": str(data), "source": asdict(source), "config": asdict(cfg)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SETTINGS_FILE, settings)
    return _run(out, settings, device=device, max_steps=max_steps, progress=progress)


def resume_adapt(
    out: str | os.PathLike, *, device: str = "auto", max_steps: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Continue the adaptation in `out` with its saved settings."""
    out = Path(out)
    if not (out / SETTINGS_FILE).is_file():
        raise FileNotFoundError(f"{out} holds no adaptation ({SETTINGS_FILE}); start one without --resume")
    settings = json.loads((out / SETTINGS_FILE).read_text())
    settings["source"]["frames"] = tuple(settings["source"]["frames"])
    return _run(out, settings, device=device, max_steps=max_steps, progress=progress)


# ---------------------------------------------------------------------------------------------
# CLI

_CONFIG_FLAGS = ("synthetic_frames", "epochs", "lr", "user_share", "seed")  # AdaptConfig fields with a flag
_SETTINGS_FLAGS = (
    "checkpoint",
    "data",
    "frames",
    "camera",
    "intrinsics",
    "depth_unit",
    "handedness",
    "preset",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="released model folder to adapt (or a run folder)")
    p.add_argument(
        "--frames", nargs="+", help="your depth frames: files, folders, quoted globs, stacked (N, H, W) .npy"
    )
    p.add_argument("--data", help="labelled synthetic store of the kind the model was trained on (.h5)")
    p.add_argument(
        "--out", required=True, help="adaptation folder; the adapted model is written to OUT/model"
    )
    p.add_argument("--resume", action="store_true", help="continue the adaptation in --out with its settings")
    add_frame_arguments(p, defaults=False)
    p.add_argument("--preset", choices=sorted(ADAPT_PRESETS), help="adaptation preset (default release)")
    config = p.add_argument_group("adaptation config (default: the --preset's)")
    comments = {
        "synthetic_frames": "labelled frames of --data, evenly spaced",
        "epochs": "adversarial epochs",
        "lr": "peak learning rate",
        "user_share": "your crops' share of the GAN's real side",
        "seed": "batches, noise and the validation split",
    }
    for name in _CONFIG_FLAGS:
        kind = type(getattr(ADAPT_PRESETS["release"], name))
        config.add_argument(f"--{name.replace('_', '-')}", type=kind, help=comments[name])
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")
    p.add_argument(
        "--max-steps", type=int, help="stop (with a checkpoint) after this many steps; --resume continues"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    common = {"device": args.device, "max_steps": args.max_steps, "progress": not args.no_progress}
    overrides = {k: getattr(args, k) for k in _CONFIG_FLAGS if getattr(args, k) is not None}
    try:
        if args.resume:
            given = [k for k in (*_SETTINGS_FLAGS, *overrides) if getattr(args, k) is not None]
            if given:
                dropped = ", ".join(f"--{k.replace('_', '-')}" for k in given)
                raise ValueError(f"--resume continues with the saved settings; drop {dropped}")
            summary = resume_adapt(args.out, **common)
        else:
            missing = [f"--{k}" for k in ("checkpoint", "frames", "data") if getattr(args, k) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)} required (unless --resume)")
            if args.intrinsics is not None and args.camera not in (None, CUSTOM):
                raise ValueError(f"--intrinsics gives a custom camera; drop --camera {args.camera}")
            source = FrameSource(
                tuple(args.frames),
                args.camera,
                None if args.intrinsics is None else tuple(args.intrinsics),
                args.depth_unit or FrameSource.depth_unit,
                args.handedness or FrameSource.handedness,
            )
            cfg = replace(ADAPT_PRESETS[args.preset or "release"], **overrides)
            summary = adapt(args.checkpoint, source, args.data, args.out, cfg, **common)
    except (ValueError, FileExistsError, FileNotFoundError) as err:  # bad input: the message names it
        raise SystemExit(f"crossingnets adapt: error: {err}") from None
    print(json.dumps(summary))
    return 0
