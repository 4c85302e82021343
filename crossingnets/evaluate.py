"""`crossingnets evaluate`: mean joint error and success rates, as the community computes them.

Two sources of predictions, compared in one table:
- text files in the community's uvd format (one frame a line, `u v d` per joint; an optional
  leading frame name, as in ICVL's `test_seq_*.txt`), scored against a ground-truth file of the
  same format and lifted to xyz with the dataset's intrinsics (`crossingnets.camera.CAMERAS`,
  the values of the community's scripts);
- a checkpoint run over an HDF5 store (`--checkpoint C --data FILE.h5`), scored against the
  store's labels, whose predictions can be written in the same text format (`--write-pred`).

Usage:
    crossingnets evaluate --dataset nyu --gt nyu_test_groundtruth_label.txt --pred A.txt B.txt \
        [--names A B] [--json] [--plot figure.html|figure.png]
    crossingnets evaluate --checkpoint ckpt/ --data nyu_test.h5 [--write-pred ours.txt]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from crossingnets.camera import Intrinsics, get_camera
from crossingnets.files import read_uvd_text, write_uvd_text
from crossingnets.hand.conventions import Convention, get_convention
from crossingnets.metrics import ErrorSummary, joint_errors_from_uvd, summarize

log = logging.getLogger(__name__)

# Thresholds (mm) whose success rate the text table prints; the JSON and plots hold all of 0-80.
TABLE_THRESHOLDS_MM = (20, 30, 40, 50)


@dataclass(frozen=True)
class MethodResult:
    name: str
    source: str  # the file or checkpoint the predictions came from
    summary: ErrorSummary


def evaluate_uvd(
    name: str, source: str, pred_uvd: np.ndarray, gt_uvd: np.ndarray, cam: Intrinsics
) -> MethodResult:
    """Score (N, J, 3) predicted uvd against (N, J, 3) ground truth; errors name the source.

    Frame counts must match exactly, as in the community's script: a file that covers a subset
    (ICVL DeepPrior: sequence A only, 702 of 1,596 frames) is scored against that subset's labels
    (`--gt test_seq_1.txt`), never silently truncated.
    """
    if len(pred_uvd) != len(gt_uvd):
        raise ValueError(
            f"{source} has {len(pred_uvd)} frames but the ground truth has {len(gt_uvd)}; score a "
            "file covering a subset against that subset's labels (e.g. --gt test_seq_1.txt)"
        )
    try:
        errors = joint_errors_from_uvd(pred_uvd, gt_uvd, cam)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    return MethodResult(name=name, source=source, summary=summarize(errors))


def predict_store(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    batch_size: int,
    rotations: int | None = None,
    refine_iterations: int | None = None,
) -> np.ndarray:
    """Run a checkpoint over every crop of a store -> (N, J, 3) predicted full-frame uvd.

    A store holds frames already through `preprocess` (crops and their centres), so they enter the
    inference path at its crop stage: `HandPoseEstimator.predict_crops(depth (B, 1, S, S) float32,
    com_uvd (B, 3), camera) -> Prediction`, as a raw frame's crop does inside `predict`. Crops are
    read batch by batch (a whole NYU test store is ~0.5 GB of float32 crops). `rotations`: the
    test-time rotations averaged, `refine_iterations` the refinement's (default the model's).
    """
    from crossingnets.data.store import read_info
    from crossingnets.inference import HandPoseEstimator

    if batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    info = read_info(data)
    estimator = HandPoseEstimator.from_pretrained(
        checkpoint, rotations=rotations, refine_iterations=refine_iterations
    )
    out = []
    with h5py.File(data, "r") as f:
        for start in tqdm(
            range(0, info.num_frames, batch_size), desc=f"predict {Path(data).name}", unit="batch"
        ):
            batch = slice(start, start + batch_size)
            pred = estimator.predict_crops(f["depth"][batch], f["com_uvd"][batch], info.camera)
            out.append(pred.joints_uvd.astype(np.float64))
    pred_uvd = np.concatenate(out)
    expected = (info.num_frames, info.convention.num_joints, 3)
    if pred_uvd.shape != expected:
        raise ValueError(
            f"checkpoint {checkpoint} predicted joints_uvd of shape {pred_uvd.shape} for store {data}, "
            f"expected {expected} ({info.convention.name})"
        )
    return pred_uvd


def results_to_json(dataset: str, gt: str, results: Sequence[MethodResult], convention: Convention) -> dict:
    return {
        "dataset": dataset,
        "ground_truth": gt,
        "methods": [
            {"name": r.name, "source": r.source, **r.summary.to_dict(convention.joint_names)} for r in results
        ],
    }


def format_table(results: Sequence[MethodResult]) -> str:
    """A plain-text table: method, frames, mean error, success rates at TABLE_THRESHOLDS_MM."""
    header = ["method", "frames", "mean (mm)"] + [f"<= {t} mm" for t in TABLE_THRESHOLDS_MM]
    rows = []
    for r in results:
        s = r.summary
        rates = [s.success_rate[np.searchsorted(s.thresholds_mm, t)] for t in TABLE_THRESHOLDS_MM]
        rows.append([r.name, str(s.num_frames), f"{s.mean_error_mm:.3f}"] + [f"{x:.3f}" for x in rates])
    widths = [max(len(c[i]) for c in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", choices=["nyu", "icvl", "msra"], help="intrinsics and joints of the test set"
    )
    parser.add_argument("--gt", type=Path, help="ground-truth uvd text file (community format)")
    parser.add_argument("--pred", type=Path, nargs="+", default=[], help="predicted uvd text files")
    parser.add_argument("--names", nargs="+", help="method names, one per --pred file (default: file stems)")
    parser.add_argument("--checkpoint", type=Path, help="model to evaluate on --data")
    parser.add_argument(
        "--data", type=Path, help="HDF5 store to run --checkpoint on (its labels are the ground truth)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="frames per forward pass with --checkpoint"
    )
    parser.add_argument(
        "--rotations",
        type=int,
        help="with --checkpoint: test-time in-plane rotations averaged (default: the model's)",
    )
    parser.add_argument(
        "--refine-iterations",
        type=int,
        help="with --checkpoint: analysis-by-synthesis iterations after the estimate (default: the model's; 0 is fastest)",
    )
    parser.add_argument("--write-pred", type=Path, help="write the checkpoint's predictions as uvd text")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--plot", type=Path, help="write success-rate and per-joint figures (.html or .png)")


@dataclass(frozen=True)
class GroundTruth:
    dataset: str  # nyu, icvl or msra
    convention: Convention
    camera: Intrinsics  # lifts uvd to xyz for the errors
    joints_uvd: np.ndarray  # (N, J, 3)
    source: str  # the file it came from


def ground_truth_from_text(dataset: str, path: str | os.PathLike) -> GroundTruth:
    """A community label file, lifted with the dataset's intrinsics (the community's values)."""
    convention = get_convention(dataset)
    joints_uvd = read_uvd_text(path, convention.num_joints).joints_uvd
    return GroundTruth(dataset, convention, get_camera(dataset), joints_uvd, str(path))


def ground_truth_from_store(path: str | os.PathLike) -> GroundTruth:
    """The labels of an HDF5 store (its crops are not read), lifted with the store's camera."""
    from crossingnets.data.store import read_info

    info = read_info(path)
    with h5py.File(path, "r") as f:
        joints_uvd = f["joints_uvd"][()].astype(np.float64)
    return GroundTruth(info.convention.name, info.convention, info.camera, joints_uvd, str(path))


def main(args: argparse.Namespace) -> int:
    predictions: list[tuple[str, str, np.ndarray]] = []  # (name, source, (N, J, 3) uvd)
    if args.checkpoint is not None:
        if args.data is None:
            raise SystemExit("--checkpoint needs --data FILE.h5")
        if args.gt is not None:
            raise SystemExit("--checkpoint is scored against the labels of --data; drop --gt")
        gt = ground_truth_from_store(args.data)
        if args.dataset is not None and args.dataset != gt.dataset:
            raise SystemExit(f"--dataset {args.dataset} but {args.data} holds {gt.dataset} joints")
        pred_uvd = predict_store(
            args.checkpoint, args.data, args.batch_size, args.rotations, args.refine_iterations
        )
        if args.write_pred is not None:
            write_uvd_text(args.write_pred, pred_uvd)
            log.info("wrote %d predicted frames to %s", len(pred_uvd), args.write_pred)
        predictions.append((args.checkpoint.stem or str(args.checkpoint), str(args.checkpoint), pred_uvd))
    else:
        if args.dataset is None or args.gt is None or not args.pred:
            raise SystemExit("evaluate needs --dataset, --gt and --pred (or --checkpoint and --data)")
        if args.write_pred is not None:
            raise SystemExit("--write-pred writes a checkpoint's predictions; it needs --checkpoint")
        gt = ground_truth_from_text(args.dataset, args.gt)
    names = args.names or [p.stem for p in args.pred]
    if len(names) != len(args.pred):
        raise SystemExit(f"--names gives {len(names)} names for {len(args.pred)} prediction files")
    for name, path in zip(names, args.pred, strict=True):
        predictions.append((name, str(path), read_uvd_text(path, gt.convention.num_joints).joints_uvd))

    results = [evaluate_uvd(name, src, pred, gt.joints_uvd, gt.camera) for name, src, pred in predictions]
    if args.json:
        print(json.dumps(results_to_json(gt.dataset, gt.source, results, gt.convention)))
    else:
        print(format_table(results))
    if args.plot is not None:
        from crossingnets.plots import evaluation_figure, save_figure

        figure = evaluation_figure(
            {r.name: r.summary for r in results},
            gt.convention.joint_names,
            f"{gt.dataset.upper()}: {Path(gt.source).name}",
        )
        save_figure(figure, args.plot)
        log.info("wrote %s", args.plot)
    return 0
