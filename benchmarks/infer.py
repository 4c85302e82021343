"""Inference speed, one raw 640x480 frame -> joints: today's paths beside the fast one, in one run.

End to end = raw depth frame in mm -> hand centre, crop (`preprocess`) -> network -> joints, then
the model's `recenter_passes` re-crops on the predicted palm, each with its own network pass (the
path of `HandPoseEstimator.predict`). Compared, each on the same frame:
- `predict`: `HandPoseEstimator.predict` as the package runs it, with one estimate per crop and no
  refinement, and (`predict_model_rotations`) with the model's test-time rotations and refinement
  (9 and 40 iterations for the bundled model);
- `onnx_baseline`: the committed preprocessing of `--baseline-rev` (read with git) and the whole
  graph in one ONNX Runtime session, the previous benchmark's ONNX path;
- `fast`: today's `preprocess` and `crossingnets.runtime.load_network` (ONNX Runtime with the
  sparse posterior kernel).
Batch 1 with 1 and 2 intra-op threads; `fast_2proc`: two processes of one thread each, each taking
frames one at a time (the 2-core throughput at batch 1); batched throughput over many frames. The
fast path's joints are checked against `predict`'s on real and synthetic frames (0.01 mm).
Prints one JSON line at the end.

    python benchmarks/infer.py --seconds 3 --checkpoint checkpoints/cn-nyu-synth
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data.depth_file import load_depth
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.files import shared_data_dir
from crossingnets.inference import HandPoseEstimator, joints_from_crop_frame
from crossingnets.models import CrossingNet, model_config
from crossingnets.runtime import EagerNetwork, Network, OnnxNetwork, RuntimeConfig, load_network

CAM = CAMERAS["nyu"]
REPO = Path(__file__).resolve().parents[1]
FRAME = REPO / "app" / "examples" / "synthetic_nyu_0.png"
REAL_FRAME = Path("depth_samples") / "nyu" / "depth_1_0000001.png"  # under the shared data folder
BASELINE_REV = "5cb2f33"  # the last commit before the fast preprocessing (issue 14)


def frames_per_s(fn: Callable[[], object], seconds: float) -> float:
    for _ in range(5):
        fn()
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        fn()
        n += 1
    return n / elapsed


def baseline_preprocess(rev: str, folder: Path) -> ModuleType | None:
    """crossingnets/data/preprocess.py as committed at `rev` (git show), imported from a copy in
    `folder`; None without git or the revision."""
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:crossingnets/data/preprocess.py"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    path = folder / f"preprocess_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def end_to_end(
    network: Network,
    crop_fn: Callable,
    frame: np.ndarray,
    cam: Intrinsics,
    crop: CropConfig,
    root: int,
    passes: int,
) -> np.ndarray:
    """`HandPoseEstimator.predict`'s path for one frame: detect, crop, network, then `passes`
    re-crops on the predicted root joint -> joints (J, 3) camera-frame mm."""
    c = crop_fn(frame, cam, crop)
    joints_xyz, joints_uvd = joints_from_crop_frame(network(c.depth[None, None])[0], c.com_uvd[None], cam)
    for _ in range(passes):
        c = crop_fn(frame, cam, crop, joints_uvd[0, root])
        joints_xyz, joints_uvd = joints_from_crop_frame(network(c.depth[None, None])[0], c.com_uvd[None], cam)
    return joints_xyz[0]


def estimator(checkpoint: str | None, network_only: bool = True) -> HandPoseEstimator:
    """The model with one estimate per crop and no refinement (the paths compared), or with its
    own test-time rotations and refinement (what `predict` runs by default)."""
    rotations, refine = (1, 0) if network_only else (None, None)
    if checkpoint:
        return HandPoseEstimator.from_pretrained(checkpoint, rotations=rotations, refine_iterations=refine)
    torch.manual_seed(0)
    return HandPoseEstimator(
        CrossingNet(model_config("release", convention="nyu")).eval(),
        rotations=rotations,
        refine_iterations=refine,
    )


def test_frames() -> list[np.ndarray]:
    """The app's example frames, and the real NYU frame where the shared data is present."""
    frames = [load_depth(p) for p in sorted((REPO / "app" / "examples").glob("synthetic_nyu_*.png"))]
    real = shared_data_dir() / REAL_FRAME
    return frames + ([load_depth(real)] if real.is_file() else [])


def joint_difference(est: HandPoseEstimator, network: Network, frames: list[np.ndarray]) -> float:
    """Largest |fast - predict| joint coordinate over the frames, mm."""
    passes, root = est.model.config.recenter_passes, est.convention.root
    diffs = [
        np.abs(
            end_to_end(network, preprocess, f, CAM, est.crop, root, passes)
            - est.predict(f, CAM).joints_xyz_mm
        )
        for f in frames
    ]
    return float(np.max(diffs))


def _worker(args: tuple[str | None, float, object]) -> int:
    """One process of `fast_2proc`: frames through the fast path for `seconds`, one at a time."""
    checkpoint, seconds, start = args
    torch.set_num_threads(1)
    est = estimator(checkpoint)
    network = load_network(est.model, RuntimeConfig(threads=1))
    frame = load_depth(FRAME)
    passes, root = est.model.config.recenter_passes, est.convention.root
    for _ in range(20):
        end_to_end(network, preprocess, frame, CAM, est.crop, root, passes)
    start.wait()  # both processes start timing together
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        end_to_end(network, preprocess, frame, CAM, est.crop, root, passes)
        n += 1
    return n


def two_processes(checkpoint: str | None, seconds: float) -> float:
    """Frames/s of two one-thread processes together."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2) as pool:
        start = manager.Barrier(2)
        counts = pool.map(_worker, [(checkpoint, seconds, start)] * 2)
    return sum(counts) / seconds


def batched(network: Network, frames: np.ndarray, cam: Intrinsics, crop: CropConfig, root: int, passes: int):
    """Many frames: crops one by one, each pass's network over the whole batch."""
    centers = [None] * len(frames)
    for _ in range(passes + 1):
        crops = [preprocess(f, cam, crop, c) for f, c in zip(frames, centers, strict=True)]
        joints_mm, _ = network(np.stack([c.depth for c in crops])[:, None])
        joints_xyz, joints_uvd = joints_from_crop_frame(joints_mm, np.stack([c.com_uvd for c in crops]), cam)
        centers = joints_uvd[:, root]
    return joints_xyz


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="released model folder (default: random release-size weights)")
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch", type=int, default=64, help="frames of the batched measurement")
    p.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the baseline preprocessing")
    return p


def main(args: argparse.Namespace) -> dict:
    est, default = estimator(args.checkpoint), estimator(args.checkpoint, network_only=False)
    frame, crop = load_depth(FRAME), est.crop
    passes, root = est.model.config.recenter_passes, est.convention.root
    old = baseline_preprocess(args.baseline_rev, Path(tempfile.mkdtemp(prefix="infer_baseline_")))
    x = preprocess(frame, CAM, crop).depth[None, None]
    fps: dict[str, float] = {}

    def measure(name: str, fn: Callable[[], object]) -> None:
        fps[name] = round(frames_per_s(fn, args.seconds), 1)
        print(f"{name:>28}: {fps[name]} frames/s", flush=True)

    measure("preprocess", lambda: preprocess(frame, CAM, crop))
    if old is not None:
        old_crop = old.CropConfig(crop.cube_mm, crop.crop_px)
        measure("preprocess_baseline", lambda: old.preprocess(frame, CAM, old_crop))
    checked = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        fast = load_network(est.model, RuntimeConfig(threads=threads))
        whole = OnnxNetwork(est.model, threads)
        checked[threads] = joint_difference(est, fast, test_frames())
        eager = EagerNetwork(est.model)
        measure(f"network_eager_{threads}t", lambda eager=eager: eager(x))
        measure(f"network_onnx_{threads}t", lambda whole=whole: whole(x))
        measure(f"network_fast_{threads}t", lambda fast=fast: fast(x))
        measure(f"end_to_end_predict_{threads}t", lambda: est.predict(frame, CAM))
        measure(f"end_to_end_predict_model_rotations_{threads}t", lambda: default.predict(frame, CAM))
        if old is not None:
            measure(
                f"end_to_end_onnx_baseline_{threads}t",
                lambda whole=whole: end_to_end(whole, old.preprocess, frame, CAM, old_crop, root, passes),
            )
        measure(
            f"end_to_end_fast_{threads}t",
            lambda fast=fast: end_to_end(fast, preprocess, frame, CAM, crop, root, passes),
        )
        many = np.repeat(frame[None], args.batch, axis=0)
        fps[f"batched_fast_{threads}t"] = round(
            args.batch
            * frames_per_s(
                lambda fast=fast, many=many: batched(fast, many, CAM, crop, root, passes), args.seconds
            ),
            1,
        )  # after frames_per_s's warm-up calls: one cold call measured ONNX Runtime's first run at this batch
        print(f"batched_fast_{threads}t: {fps[f'batched_fast_{threads}t']} frames/s", flush=True)
    fps["end_to_end_fast_2proc"] = round(two_processes(args.checkpoint, args.seconds), 1)
    print(f"end_to_end_fast_2proc: {fps['end_to_end_fast_2proc']} frames/s", flush=True)
    result = {
        "benchmark": "infer",
        "batch_size": 1,
        "recenter_passes": passes,
        "model_test_rotations": len(default.rotation_angles_deg),
        "model_refine_iterations": default.refine.iterations,
        "backend": load_network(est.model).backend,
        "baseline_rev": args.baseline_rev if old is not None else None,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "max_joint_difference_mm": {f"{t}t": round(v, 5) for t, v in checked.items()},
        "frames_per_s": fps,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
