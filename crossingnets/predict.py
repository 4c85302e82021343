"""`crossingnets predict`: the 3D hand pose of depth frames from your own camera.

Inputs: depth files (16-bit PNG, NYU RGB PNG, MSRA .bin, .npy), folders of them, glob patterns
(quoted, so the shell leaves them to us) and stacked `.npy` sequences (N, H, W). All frames of one
command, in order (a folder's and a glob's sorted by name), form one sequence: `--smooth` filters
its joints over time (One Euro filter, `crossingnets.smoothing`). Each frame takes the one
inference path, `HandPoseEstimator.predict_raw`, with its depth unit, camera and handedness.

Usage:
    crossingnets predict --checkpoint checkpoints/cn-nyu-synth frame.png --camera sr305 --depth-unit 0.125
    crossingnets predict --checkpoint C 'frames/*.png' --camera cam.yaml --out poses.jsonl
    crossingnets predict --checkpoint C seq.npy --depth-unit m --smooth --fps 30 --out poses.txt
Outputs (`--out`, format from its suffix or `--format`): JSON lines (default, to stdout without
--out), CSV (one row per joint) or the community's uvd text, which `crossingnets evaluate --pred`
reads.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crossingnets.camera import CUSTOM, HANDEDNESS, PRESETS, xyz_to_uvd
from crossingnets.data.depth_file import DEFAULT_LIMITS, READERS, DepthImageError, UploadLimits, load_depth
from crossingnets.data.depth_units import UNITS
from crossingnets.files import atomic_output, format_uvd_text
from crossingnets.hand.conventions import Convention
from crossingnets.inference import HandPoseEstimator, Prediction
from crossingnets.records import JOINT_COLUMNS, joint_rows, prediction_record
from crossingnets.smoothing import OneEuroConfig, one_euro

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".txt": "uvd"}  # --out suffix -> format


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class FrameRef:
    path: Path
    index: int | None = None  # frame of a stacked .npy sequence; None: the file is one frame

    @property
    def name(self) -> str:
        return self.path.name if self.index is None else f"{self.path.name}[{self.index}]"


def _stack_length(path: Path) -> int | None:
    """The frame count of a stacked (N, H, W) .npy, None for a one-frame .npy (read from its header)."""
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (ValueError, OSError, EOFError) as err:
        raise DepthImageError(f"depth file {path.name} is not a readable .npy array ({err})") from None
    if len(shape) == 3 and shape[-1] != 1:
        return shape[0]
    return None


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[FrameRef]:
    """Files, folders (their depth files, sorted), glob patterns (sorted) and stacked .npy
    sequences -> one FrameRef per frame, in order. Raises ValueError naming an input that gives none."""
    refs: list[FrameRef] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in READERS)
            if not files:
                raise ValueError(f"folder {path} holds no depth files ({', '.join(READERS)})")
        elif path.is_file():
            files = [path]
        elif glob.has_magic(str(item)):
            files = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
            if not files:
                raise ValueError(f"pattern {str(item)!r} matches no file")
        else:
            raise ValueError(f"depth file {path} not found")
        for file in files:
            count = _stack_length(file) if file.suffix.lower() == ".npy" else None
            refs.extend([FrameRef(file)] if count is None else (FrameRef(file, i) for i in range(count)))
    return refs


def read_frames(refs: Sequence[FrameRef], limits: UploadLimits = DEFAULT_LIMITS) -> Iterator[np.ndarray]:
    """Each frame's raw (H, W) values, in its own unit; a stacked .npy is mapped, not read whole."""
    stacks: dict[Path, np.ndarray] = {}
    for ref in refs:
        if ref.index is None:
            yield load_depth(ref.path, limits)
            continue
        if ref.path not in stacks:
            stacks.clear()  # one sequence open at a time
            stacks[ref.path] = np.load(ref.path, mmap_mode="r", allow_pickle=False)
        frame = np.asarray(stacks[ref.path][ref.index])
        if max(frame.shape) > limits.max_side_px:
            raise DepthImageError(
                f"depth file {ref.name} is {frame.shape[1]}x{frame.shape[0]} px, larger than the limit of "
                f"{limits.max_side_px} px a side"
            )
        if not (np.issubdtype(frame.dtype, np.integer) or np.issubdtype(frame.dtype, np.floating)):
            raise DepthImageError(f"depth file {ref.name} holds {frame.dtype} values, not numbers")
        yield frame


# ---------------------------------------------------------------------------------------------
# Frames -> predictions -> files


def predict_frames(
    estimator: HandPoseEstimator, refs: Sequence[FrameRef], progress: bool = True, **options
) -> list[Prediction]:
    """One Prediction per frame, in order, with a progress bar; `options` as
    `HandPoseEstimator.predict_raw` takes them (camera, custom, center, depth_unit, handedness)."""
    bar = tqdm(refs, desc="predict", unit="frame", disable=not progress or len(refs) < 2)
    return [
        estimator.predict_raw(raw, name=f"depth image {ref.name}", **options)
        for ref, raw in zip(bar, read_frames(refs), strict=True)
    ]


def smooth_predictions(preds: Sequence[Prediction], cfg: OneEuroConfig) -> list[Prediction]:
    """The sequence's joints filtered over time (One Euro, camera-frame mm), uvd re-projected."""
    if not preds:
        return []
    xyz = one_euro(np.stack([p.joints_xyz_mm for p in preds]), cfg)
    return [
        dataclasses.replace(
            p, joints_xyz_mm=x.astype(np.float32), joints_uvd=xyz_to_uvd(x, p.camera).astype(np.float32)
        )
        for p, x in zip(preds, xyz, strict=True)
    ]


def format_predictions(
    fmt: str, refs: Sequence[FrameRef], preds: Sequence[Prediction], convention: Convention
) -> str:
    """The predictions as text: "jsonl" (one `prediction_record` a line), "csv" (one row per joint,
    after image and frame columns) or "uvd" (the community's format, one frame a line)."""
    if fmt == "jsonl":
        return "".join(
            json.dumps(prediction_record(r.path, p, convention, r.index)) + "\n"
            for r, p in zip(refs, preds, strict=True)
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "frame", *JOINT_COLUMNS])
        for ref, pred in zip(refs, preds, strict=True):
            index = "" if ref.index is None else ref.index
            writer.writerows([str(ref.path), index, *row] for row in joint_rows(pred, convention))
        return buf.getvalue()
    if fmt == "uvd":
        return format_uvd_text(np.stack([p.joints_uvd for p in preds]))
    raise ValueError(f"unknown output format {fmt!r}; expected one of {sorted(set(FORMATS.values()))}")


def output_format(out: Path | None, fmt: str | None) -> str:
    """--format, else from --out's suffix, else JSON lines."""
    if fmt is not None:
        return fmt
    if out is None:
        return "jsonl"
    if out.suffix.lower() not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {out.name} from its suffix; add --format {{jsonl,csv,uvd}}"
        )
    return FORMATS[out.suffix.lower()]


# ---------------------------------------------------------------------------------------------
# The subcommand


def add_frame_arguments(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    """How the frames were taken: camera, intrinsics, depth unit, handedness (`predict`, `adapt`).

    Without `defaults` they default to None: `adapt --resume` keeps the settings it started with.
    """
    p.add_argument(
        "--camera",
        help=f"a preset ({', '.join(PRESETS)}), a camera file (ROS camera_info .yaml, RealSense/Open3D "
        ".json) or 'custom' with --intrinsics (default: the model's dataset camera)",
    )
    p.add_argument(
        "--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), help="custom camera, px"
    )
    p.add_argument(
        "--depth-unit",
        default="mm" if defaults else None,
        help=f"unit of the stored depth: {', '.join(UNITS)}, a scale in mm per unit (0.125) or a number "
        "with a unit (0.000125 m); default mm",
    )
    p.add_argument(
        "--handedness",
        choices=HANDEDNESS,
        default="right" if defaults else None,
        help="a left hand is mirrored in and out (default right)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "images",
        nargs="+",
        help="depth frames (16-bit PNG, NYU RGB PNG, MSRA .bin, .npy), folders of them, quoted glob "
        "patterns, stacked (N, H, W) .npy sequences",
    )
    p.add_argument("--checkpoint", required=True, help="released model folder (or a run folder)")
    p.add_argument(
        "--rotations",
        type=int,
        help="test-time in-plane rotations averaged, odd (default: the model's; 1 is fastest)",
    )
    p.add_argument(
        "--refine-iterations",
        type=int,
        help="analysis-by-synthesis iterations after the estimate (default: the model's; 0 is fastest)",
    )
    add_frame_arguments(p)
    p.add_argument(
        "--center",
        type=float,
        nargs=3,
        metavar=("U", "V", "D"),
        help="hand centre uvd, for every frame; D <= 0 takes the depth from the image (default: detect)",
    )
    p.add_argument(
        "--out", type=Path, help="output file (.jsonl, .csv, .txt = uvd); default: JSON lines on stdout"
    )
    p.add_argument(
        "--format", choices=sorted(set(FORMATS.values())), help="output format (default: from --out)"
    )
    p.add_argument("--smooth", action="store_true", help="One Euro filter over the frames, in order")
    p.add_argument("--fps", type=float, default=OneEuroConfig.rate_hz, help="frame rate of the sequence")
    p.add_argument(
        "--min-cutoff", type=float, default=OneEuroConfig.min_cutoff_hz, help="One Euro cutoff at rest, Hz"
    )
    p.add_argument("--beta", type=float, default=OneEuroConfig.beta, help="One Euro speed coefficient, 1/mm")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")


def main(args: argparse.Namespace) -> int:
    try:
        camera = args.camera or (CUSTOM if args.intrinsics else None)
        if args.intrinsics is not None and camera != CUSTOM:
            raise ValueError(f"--intrinsics gives a custom camera; drop --camera {camera}")
        fmt = output_format(args.out, args.format)
        smoothing = OneEuroConfig(args.fps, args.min_cutoff, args.beta) if args.smooth else None
        refs = expand_inputs(args.images)
        estimator = HandPoseEstimator.from_pretrained(
            args.checkpoint, args.device, args.rotations, args.refine_iterations
        )
        preds = predict_frames(
            estimator,
            refs,
            camera=camera or estimator.convention.name,
            custom=args.intrinsics,
            center=args.center,
            depth_unit=args.depth_unit,
            handedness=args.handedness,
        )
        if smoothing is not None:
            preds = smooth_predictions(preds, smoothing)
        text = format_predictions(fmt, refs, preds, estimator.convention)
    except ValueError as err:  # bad input: the message names what was wrong
        raise SystemExit(f"crossingnets predict: error: {err}") from None
    if args.out is None:
        sys.stdout.write(text)
    else:
        with atomic_output(args.out) as tmp:
            tmp.write_text(text, encoding="utf-8")
        log.info("wrote %d frames (%s) to %s", len(preds), fmt, args.out)
    return 0
