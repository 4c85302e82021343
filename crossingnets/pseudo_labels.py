"""`crossingnets pseudo-label`: a trained model's estimates on the frames it saw without labels,
as labels, kept where its test-time rotations agree (issue 12: semi-supervision beyond the paper).

The frames are those a training run with the same `--seed`, `--label-fraction` and
`--val-fraction` treats as unlabeled (the training stores' frames outside the label subset and the
validation split) and the `--unlabeled` pool. Each is estimated from its crop and turned copies
(`HandPoseEstimator.predict_crops_with_spread`); the average is the label, kept where the turned
estimates spread less than `--max-spread-mm` from it (or, with `--keep-fraction`, for that share of
the frames whose estimates agree best). With `--refine-iterations`, the average is refined by the
generator against the crop first (`crossingnets.refinement`: the labels of the frames the model's
drawing explains); it costs ~0.2 s a frame on one core, so `--max-frames` estimates a seeded subset.
The result is a store that `crossingnets train --pseudo STORE` trains on as labelled frames.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from crossingnets.camera import xyz_to_uvd
from crossingnets.data.store import StoreWriter, load_arrays, read_info
from crossingnets.data.training import load_data
from crossingnets.inference import HandPoseEstimator
from crossingnets.metrics import joint_errors_mm

CHUNK = 4096  # frames estimated at a time
REFINED_CHUNK = 256  # with refinement (~50 s a chunk on one core): the progress bar moves


def unlabeled_frames(
    data: Sequence[str | os.PathLike], unlabeled: str | os.PathLike | None, *, seed: int, label_fraction: float,
    val_fraction: float,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Crops (N, 1, S, S), centres (N, 3) uvd and stored joints (N, J, 3) of the frames a run with
    these settings does not read the labels of: its training frames outside the label subset, then
    the pool."""
    d = load_data(
        list(data), None, None, 1.0, seed=seed, label_fraction=label_fraction, val_fraction=val_fraction
    )
    rest = np.setdiff1d(np.arange(len(d.train)), d.labeled.numpy())
    train = d.train.subset(rest)
    parts = [{"depth": train.depth.numpy(), "com_uvd": xyz_to_uvd(train.center_xyz.numpy().astype(np.float64), d.info.camera),
              "joints_xyz": train.joints_xyz.numpy()}]  # fmt: skip
    if unlabeled is not None:
        if read_info(unlabeled).camera != d.info.camera:
            raise ValueError(f"{unlabeled} was cropped with another camera than {data[0]}")
        pool = load_arrays(unlabeled)
        parts.append({k: pool[k] for k in parts[0]})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def pseudo_label(
    model: str | os.PathLike,
    data: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    unlabeled: str | os.PathLike | None = None,
    seed: int = 0,
    label_fraction: float = 1.0,
    val_fraction: float = 0.02,
    max_spread_mm: float = 8.0,
    keep_fraction: float | None = None,
    rotations: int = 9,
    refine_iterations: int = 0,
    max_frames: int | None = None,
    score: bool = False,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the kept pseudo-labels of `model` into the store `out`; returns a summary (frames,
    kept, the spread threshold and quantiles; with `score`, the error of all and of the kept labels
    against the stores' own joints, which only synthetic stores have for their unlabeled frames).
    `keep_fraction`, instead of `max_spread_mm`: keep that share of the frames, those whose turned
    estimates agree best (a threshold that follows the model: at 8 mm a 30 mm model kept 1.7 %).
    `refine_iterations`: the generator's refinement of each label (0: none, whatever the model's
    default: it multiplies the cost ~30-fold); `max_frames`: estimate only that many of the
    unlabeled frames, drawn with `seed`."""
    if max_spread_mm <= 0 or (keep_fraction is not None and not 0.0 < keep_fraction <= 1.0):
        raise ValueError(
            f"max_spread_mm must be > 0 and keep_fraction in (0, 1], got {max_spread_mm}, {keep_fraction}"
        )
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    info = read_info(data[0])
    estimator = HandPoseEstimator.from_pretrained(model, device, rotations, refine_iterations)
    if (estimator.crop.crop_px, estimator.crop.cube_mm) != (info.crop.crop_px, info.crop.cube_mm):
        raise ValueError(f"{model} reads {estimator.crop.crop_px} px crops of {estimator.crop.cube_mm:g} mm; "
                         f"{data[0]} holds {info.crop.crop_px} px of {info.crop.cube_mm:g} mm")  # fmt: skip
    frames = unlabeled_frames(  # after the model's checks: the stores' frames are the slow part
        data, unlabeled, seed=seed, label_fraction=label_fraction, val_fraction=val_fraction
    )
    if max_frames is not None and max_frames < len(frames["depth"]):
        pick = np.sort(np.random.default_rng(seed).choice(len(frames["depth"]), max_frames, replace=False))
        frames = {k: v[pick] for k, v in frames.items()}
    n, j = frames["joints_xyz"].shape[:2]
    joints_xyz, joints_uvd = np.empty((n, j, 3), np.float32), np.empty((n, j, 3), np.float32)
    spreads = np.empty(n, np.float32)
    with (
        torch.inference_mode(),
        tqdm(total=n, desc=f"pseudo-label {Path(out).name}", unit="frame", disable=not progress) as bar,
    ):
        chunk = REFINED_CHUNK if refine_iterations else CHUNK
        for lo in range(0, n, chunk):
            part = slice(lo, min(lo + chunk, n))
            pred, spreads[part] = estimator.predict_crops_with_spread(
                frames["depth"][part], frames["com_uvd"][part], info.camera
            )
            joints_xyz[part], joints_uvd[part] = pred.joints_xyz_mm, pred.joints_uvd
            bar.update(part.stop - part.start)
    limit = max_spread_mm if keep_fraction is None else float(np.quantile(spreads, keep_fraction))
    kept = spreads <= limit
    if not kept.any():
        raise ValueError(f"no frame's estimates spread less than {limit:g} mm: nothing to write")
    attrs = {"source": "pseudo-labels", "model": str(model), "max_spread_mm": limit,
             "refine_iterations": refine_iterations,
             "from": json.dumps({"data": [str(p) for p in data], "unlabeled": None if unlabeled is None else str(unlabeled),
                                 "seed": seed, "label_fraction": label_fraction, "val_fraction": val_fraction})}  # fmt: skip
    with StoreWriter(out, info.convention, info.camera, info.crop, attrs, overwrite=overwrite) as writer:
        writer.append(depth=frames["depth"][kept], joints_xyz=joints_xyz[kept], joints_uvd=joints_uvd[kept],
                      com_uvd=frames["com_uvd"][kept])  # fmt: skip
    summary: dict[str, Any] = {"store": str(out), "frames": n, "kept": int(kept.sum()), "max_spread_mm": round(limit, 3),
                               "refine_iterations": refine_iterations,
                               "spread_mm": dict(zip(("p10", "p50", "p90"), np.percentile(spreads, [10, 50, 90]).round(2).tolist(), strict=True))}  # fmt: skip
    if score:
        errors = joint_errors_mm(joints_xyz, frames["joints_xyz"]).mean(axis=1)
        summary["error_mm"] = {
            "all": round(float(errors.mean()), 2),
            "kept": round(float(errors[kept].mean()), 2),
        }
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="released model folder (or a run folder) that estimates")
    p.add_argument("--data", nargs="+", required=True, help="the training store(s) of the run to come")
    p.add_argument("--unlabeled", help="the run's unlabeled pool: estimated too")
    p.add_argument("--out", required=True, help="output store (.h5), for `crossingnets train --pseudo`")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (its label subset and split)")
    p.add_argument("--label-fraction", type=float, default=1.0, help="the run's label fraction")
    p.add_argument("--val-fraction", type=float, default=0.02, help="the run's validation fraction")
    p.add_argument("--max-spread-mm", type=float, default=8.0,
                   help="keep a frame where its turned estimates lie this close to their mean, on average")  # fmt: skip
    p.add_argument("--keep-fraction", type=float,
                   help="instead of --max-spread-mm: keep this share of the frames, the most consistent")  # fmt: skip
    p.add_argument("--rotations", type=int, default=9, help="turned copies of each crop estimated (odd)")
    p.add_argument("--refine-iterations", type=int, default=0,
                   help="the generator's refinement of each label (kinematic generators; ~0.2 s a frame)")  # fmt: skip
    p.add_argument("--max-frames", type=int, help="estimate a seeded subset of this many unlabeled frames")
    p.add_argument(
        "--score",
        action="store_true",
        help="also the labels' error against the stores' own joints (synthetic stores)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def main(args: argparse.Namespace) -> int:
    try:
        summary = pseudo_label(
            args.model, args.data, args.out, unlabeled=args.unlabeled, seed=args.seed,
            label_fraction=args.label_fraction, val_fraction=args.val_fraction,
            max_spread_mm=args.max_spread_mm, keep_fraction=args.keep_fraction, rotations=args.rotations,
            refine_iterations=args.refine_iterations, max_frames=args.max_frames, score=args.score,
            device=args.device, overwrite=args.overwrite,
        )  # fmt: skip
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        raise SystemExit(f"crossingnets pseudo-label: {err}") from None
    print(json.dumps(summary))
    return 0
