"""Mean joint error on NYU's test poses (rendered, `bench/nyu_poses.h5`) by how far the palm turns
away from the camera: where a model trained on hands that face the camera fails.

The palm's normal is taken from the labels (the plane of the index and little fingers' roots and
the palm joint), so the angle is approximate (about +-15 deg against the sampler's own); 0 deg: the
palm faces the camera, 180: its back does. One estimate per crop.

    python benchmarks/palm_tilt.py --checkpoint checkpoints/cn-nyu-synth [--checkpoint runs/other ...]

Prints a markdown table, then one JSON line: per checkpoint and 30-degree bin, [frames, mean mm].
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from crossingnets.inference import HandPoseEstimator
from crossingnets.metrics import joint_errors_mm

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/ is not a package: its test sets
import pose_accuracy  # noqa: E402

BIN_DEG = 30
INDEX_ROOT, LITTLE_ROOT, PALM = 7, 1, 13  # NYU's joints


def palm_tilt_deg(joints_xyz: np.ndarray) -> np.ndarray:
    """(N,) angle in degrees between each right hand's palm normal and the direction to the camera."""
    j = joints_xyz.astype(np.float64)
    normal = np.cross(j[:, INDEX_ROOT] - j[:, PALM], j[:, LITTLE_ROOT] - j[:, PALM])
    cos = -normal[:, 2] / np.linalg.norm(normal, axis=1)  # the camera looks along +z
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def by_bin(tilt_deg: np.ndarray, errors_mm: np.ndarray) -> dict[str, list]:
    """{'lo-hi': [frames, mean error]} per BIN_DEG bin with frames."""
    out = {}
    for lo in range(0, 180, BIN_DEG):
        inside = (tilt_deg >= lo) & (tilt_deg < lo + BIN_DEG if lo + BIN_DEG < 180 else tilt_deg <= 180)
        if inside.any():
            out[f"{lo}-{lo + BIN_DEG}"] = [int(inside.sum()), round(float(errors_mm[inside].mean()), 1)]
    return out


def main(args: argparse.Namespace) -> dict:
    test = pose_accuracy.load_store_set("nyu_poses", args.bench / "nyu_poses.h5")
    if test.info.convention.name != "nyu":
        raise SystemExit("the palm's joints are NYU's: the store must use the nyu convention")
    tilt = palm_tilt_deg(test.arrays["joints_xyz"])
    result = {}
    for checkpoint in args.checkpoint:
        estimator = HandPoseEstimator.from_pretrained(checkpoint, args.device, 1)
        errors = joint_errors_mm(
            estimator.predict_crops(
                test.arrays["depth"], test.arrays["com_uvd"], test.info.camera
            ).joints_xyz_mm,
            test.arrays["joints_xyz"],
        ).mean(axis=1)
        result[checkpoint] = by_bin(tilt, errors)
    bins = list(next(iter(result.values())))
    print("| palm turned from the camera (deg) | frames | " + " | ".join(args.checkpoint) + " |")
    print("|---|---:|" + "---:|" * len(args.checkpoint))
    for b in bins:
        frames = result[args.checkpoint[0]][b][0]
        print(f"| {b} | {frames} | " + " | ".join(f"{result[c][b][1]:.1f}" for c in args.checkpoint) + " |")
    print(json.dumps(result))
    return result


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", required=True, help="model folder (repeat to compare)")
    p.add_argument("--bench", type=Path, default=Path("bench"), help="folder holding nyu_poses.h5")
    p.add_argument("--device", default="cpu")
    return p


if __name__ == "__main__":
    main(get_args_parser().parse_args())
