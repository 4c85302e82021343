"""Adapting to a sensor (issue 13): `crossingnets adapt` with an independent renderer's frames as
the user's captures, the error before and after.

The independent renderer (`benchmarks/second_renderer.py`: its own hand mesh, forearm, walls and
Kinect-like sensor; never trained on) stands for another sensor and another hand. The frames of
BENCH/second_renderer_detect.h5 are rendered again, raw, and split: the first half, written as
16-bit PNGs in mm, are the adaptation frames (their labels unused); the second half is the test.
Errors before and after (community mean joint error, success rates at 20 / 40 mm):
- second_renderer_raw_test: the test half's raw frames through the whole inference path
  (`HandPoseEstimator.predict`: detection, the palm re-crop): what a user gets;
- second_renderer_detect_test: the test half's stored crops (detected centre);
- synthetic_test: our renderer's test store (BENCH/test.h5): that nothing was forgotten.
A control adaptation without the frames (`--user-share 0`: the same schedule on the synthetic
frames alone; skip it with --no-control) separates what the frames bought from what the short
fine-tuning does by itself: `frames_effect_mm` is after minus control.

    python benchmarks/adapt.py --checkpoint checkpoints/cn-nyu-synth --data runs/data/rand_train.h5 \
        --out runs/adapt-bench [--bench bench/] [--frames 1000] [--synthetic-frames 16384] [--no-control]

Rendered frames are kept in OUT/frames and reused. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from crossingnets.adapt import ADAPT_PRESETS, FrameSource, adapt
from crossingnets.camera import get_camera
from crossingnets.data.depth_file import load_depth
from crossingnets.data.store import load_arrays, read_info
from crossingnets.files import shared_data_dir
from crossingnets.inference import HandPoseEstimator

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/ is not a package: its test sets
import pose_accuracy as PA  # noqa: E402


def render_halves(store: Path, labels: Path, n: int, folder: Path) -> tuple[Path, Path]:
    """The store's first n frames rendered again, raw, as 16-bit PNGs in mm (rounded, as sensors
    store them): folder/adapt (first half) and folder/test (second half, with joints_xyz.npy).
    Kept and reused when folder/done.json says the same n."""
    done = folder / "done.json"
    halves = folder / "adapt", folder / "test"
    if done.is_file() and json.loads(done.read_text()) == {"store": str(store), "frames": n}:
        return halves
    shutil.rmtree(folder, ignore_errors=True)
    for h in halves:
        h.mkdir(parents=True)
    frames = itertools.islice(PA.second_renderer_raw_frames(store, labels), n)
    joints = []
    for i, (depth, xyz) in enumerate(tqdm(frames, total=n, desc="render", unit="frame")):
        half = halves[0] if i < n // 2 else halves[1]
        Image.fromarray(np.rint(depth).astype(np.uint16)).save(half / f"{i:05d}.png")
        if half == halves[1]:
            joints.append(xyz)
    np.save(halves[1] / "joints_xyz.npy", np.stack(joints))
    done.write_text(json.dumps({"store": str(store), "frames": n}))
    return halves


def raw_test_errors(estimator: HandPoseEstimator, test: Path) -> tuple[np.ndarray, int]:
    """(N, J) errors of `predict` on the test half's PNGs, and the frames without a hand."""
    files = sorted(test.glob("*.png"))
    frames = zip((load_depth(f) for f in files), np.load(test / "joints_xyz.npy"), strict=True)
    return PA.raw_errors(estimator, frames, get_camera("nyu"), len(files))


def evaluate(estimator: HandPoseEstimator, test: Path, stored: dict) -> dict[str, dict]:
    """Figures of every set for one model."""
    errors, missed = raw_test_errors(estimator, test)
    out = {"second_renderer_raw_test": {**PA.figures(errors), "frames": len(errors), "no_hand": missed}}
    for name, test_set in stored.items():
        errors = PA.model_errors(estimator, test_set)
        out[name] = {**PA.figures(errors), "frames": len(errors)}
    return out


def stored_sets(bench: Path, n: int) -> dict:
    """The test half of the second renderer's detected-centre crops, and the synthetic test store."""
    second, synthetic = bench / "second_renderer_detect.h5", bench / "test.h5"
    arrays = {k: v[n // 2 : n] for k, v in load_arrays(second).items()}
    sets = {
        "second_renderer_detect_test": PA.TestSet("second_renderer_detect_test", read_info(second), arrays)
    }
    if synthetic.is_file():
        sets["synthetic_test"] = PA.load_store_set("synthetic_test", synthetic)
    return sets


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="released model folder to adapt")
    p.add_argument("--data", required=True, help="labelled synthetic store of the model's kind")
    p.add_argument("--out", type=Path, required=True, help="folder for frames, adaptations and the report")
    p.add_argument("--bench", type=Path, default=Path("bench"), help="folder of the test stores")
    p.add_argument("--frames", type=int, default=1000, help="second-renderer frames: half adapt, half test")
    p.add_argument("--preset", default="release", choices=sorted(ADAPT_PRESETS), help="adaptation preset")
    p.add_argument("--synthetic-frames", type=int, help="override the preset's labelled synthetic frames")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--lr", type=float, help="override the preset's peak learning rate")
    p.add_argument("--no-control", action="store_true", help="skip the control run without the frames")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")
    return p


def main(args: argparse.Namespace) -> dict:
    store = args.bench / "second_renderer_detect.h5"
    labels = shared_data_dir() / "nyu" / "nyu_test_groundtruth_label.txt"
    n = min(args.frames, read_info(store).num_frames)
    if n < 2:
        raise ValueError(f"--frames must leave at least one frame per half, got {args.frames}")
    overrides = {
        k: getattr(args, k) for k in ("synthetic_frames", "epochs", "lr") if getattr(args, k) is not None
    }
    cfg = replace(ADAPT_PRESETS[args.preset], **overrides)
    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    adapt_frames, test_frames = render_halves(store, labels, n, args.out / "frames")
    wall["render_s"] = time.perf_counter() - t0
    stored = stored_sets(args.bench, n)
    t0 = time.perf_counter()
    results = {"before": evaluate(HandPoseEstimator.from_pretrained(args.checkpoint), test_frames, stored)}
    wall["evaluate_before_s"] = time.perf_counter() - t0
    runs = {"after": cfg, **({} if args.no_control else {"control": replace(cfg, user_share=0.0)})}
    summaries = {}
    for name, run_cfg in runs.items():
        run = args.out / name
        shutil.rmtree(run, ignore_errors=True)
        t0 = time.perf_counter()
        source = FrameSource((str(adapt_frames),), camera="nyu")
        summaries[name] = adapt(args.checkpoint, source, args.data, run, run_cfg, device=args.device)
        wall[f"adapt_{name}_s"] = time.perf_counter() - t0
        results[name] = evaluate(
            HandPoseEstimator.from_pretrained(summaries[name]["model"]), test_frames, stored
        )
    for set_name, before in results["before"].items():
        row = " | ".join(f"{k} {results[k][set_name]['mean_mm']:.2f} mm" for k in results)
        print(f"{set_name} ({before['frames']} frames): {row}")
    report = {
        "benchmark": "adapt",
        "checkpoint": str(args.checkpoint),
        "data": str(args.data),
        "adaptation_frames": len(list(adapt_frames.glob("*.png"))),
        "config": asdict(cfg),
        "sets": {s: {k: results[k][s] for k in results} for s in results["before"]},
        "change_mm": {
            s: results["after"][s]["mean_mm"] - results["before"][s]["mean_mm"] for s in results["before"]
        },
        "frames_effect_mm": {
            s: results["after"][s]["mean_mm"] - results["control"][s]["mean_mm"] for s in results["before"]
        }
        if "control" in results
        else None,  # fmt: skip
        "summaries": summaries,
        "wall_s": {k: round(v, 1) for k, v in wall.items()},
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
