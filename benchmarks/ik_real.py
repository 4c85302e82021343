"""How well can the kinematic hand represent real hands? Fit IK to the NYU and ICVL test labels.

Reads NYU's 8,252 test labels (14 joints) and ICVL's 1,596 (16 joints) as uvd, lifts them to
camera mm with each dataset's intrinsics, fits the model (angles, rotation, translation, shape)
and prints the residual per dataset: mean and 95th percentile over all joints of all frames, in
mm, and the wall time. ICVL's labels are of a left hand, so they are fitted mirrored (x -> -x).
The last line printed is one JSON object with every figure.

    python benchmarks/ik_real.py [--datasets nyu icvl] [--limit N] [--iterations 300] [--threads 1] [--shape-sd-mm 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from crossingnets.camera import CAMERAS, uvd_to_xyz
from crossingnets.files import SHARED_DATA_ENV, read_uvd_text, shared_data_dir
from crossingnets.hand.conventions import ICVL, NYU, Convention
from crossingnets.hand.ik import IKConfig, fit_ik
from crossingnets.hand.kinematics import DEFAULT_LINKS_MM, DEFAULT_PALM_MM

# (convention, label file under the data folder, left hand?)
DATASETS: tuple[tuple[Convention, str, bool], ...] = (
    (NYU, "nyu/nyu_test_groundtruth_label.txt", False),
    (ICVL, "icvl/icvl_test_groundtruth_label.txt", True),
)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    p.add_argument(
        "--datasets",
        nargs="+",
        choices=[c.name for c, _, _ in DATASETS],
        default=[c.name for c, _, _ in DATASETS],
    )
    p.add_argument("--limit", type=int, default=None, help="fit only the first N frames per dataset")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest: tiny ops)")
    p.add_argument(
        "--shape-sd-mm",
        type=float,
        default=IKConfig().shape_sd_mm,
        help="stiffness of the shape prior; small values keep the default hand (only scale free)",
    )
    return p


def load_joints_xyz_mm(path: Path, convention: Convention, limit: int | None) -> np.ndarray:
    """(B, J, 3) camera mm from a community label file of `u v d` per joint, one frame a line."""
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found (pass --data or set {SHARED_DATA_ENV})")
    uvd = read_uvd_text(path, convention.num_joints).joints_uvd[:limit]
    return uvd_to_xyz(uvd, CAMERAS[convention.name])


def fit_dataset(
    joints_xyz_mm: np.ndarray, convention: Convention, left_hand: bool, iterations: int, cfg: IKConfig
) -> dict:
    """Fit and summarise: residual mean / p95 / max (mm) and per joint, how far the fitted shapes
    moved from the default hand, wall and CPU time (s)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fit = fit_ik(joints_xyz_mm, convention, iterations=iterations, left_hand=left_hand, cfg=cfg)
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    residual = fit.residual_mm
    link_change = np.abs(fit.shape.links_mm / DEFAULT_LINKS_MM - 1)
    palm_offset = np.linalg.norm(fit.shape.palm_mm - DEFAULT_PALM_MM, axis=-1)
    return {
        "frames": len(joints_xyz_mm),
        "mean_mm": round(float(residual.mean()), 3),
        "p95_mm": round(float(np.percentile(residual, 95)), 3),
        "max_mm": round(float(residual.max()), 3),
        "per_joint_mean_mm": {
            n: round(float(v), 2) for n, v in zip(convention.joint_names, residual.mean(0), strict=True)
        },
        "scale_p5_p50_p95": np.percentile(fit.shape.scale, [5, 50, 95]).round(3).tolist(),
        "link_change_mean_pct": round(100 * float(link_change.mean()), 1),
        "palm_offset_mean_mm": round(float(palm_offset.mean()), 2),
        "wall_s": round(wall_s, 1),
        "cpu_s": round(cpu_s, 1),  # all threads; on a shared machine wall time also counts waiting
    }


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cfg = IKConfig(shape_sd_mm=args.shape_sd_mm)
    results = {"iterations": args.iterations, "threads": args.threads, "shape_sd_mm": args.shape_sd_mm}
    for convention, rel, left_hand in (d for d in DATASETS if d[0].name in args.datasets):
        joints = load_joints_xyz_mm(args.data / rel, convention, args.limit)
        r = fit_dataset(joints, convention, left_hand, args.iterations, cfg)
        results[convention.name] = r
        print(
            f"{convention.name}: {r['frames']} frames, residual mean {r['mean_mm']:.2f} mm, "
            f"p95 {r['p95_mm']:.2f} mm, max {r['max_mm']:.1f} mm, "
            f"{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU"
        )
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
