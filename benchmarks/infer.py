"""Inference speed: batch-1 frames/s of the paper-size network, end to end and network only.

End to end = raw 640x480 depth frame in mm -> hand centre, crop (the shared preprocessing) ->
network -> joints in camera-frame mm and uvd. Measured with 1 and 2 threads, eager PyTorch and
ONNX Runtime. Self-contained (random weights unless --checkpoint); prints one JSON line at the end.

    python benchmarks/infer.py --seconds 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from crossingnets.camera import CAMERAS
from crossingnets.data.preprocess import preprocess
from crossingnets.export import INPUT_NAME, OUTPUT_NAMES, export_onnx, onnx_session
from crossingnets.inference import HandPoseEstimator, joints_from_crop_frame
from crossingnets.models import CrossingNet, model_config

CAM = CAMERAS["nyu"]


def hand_frame() -> np.ndarray:
    """A 640x480 frame in mm: a tilted disc (the hand) at 600 mm in front of a wall at 1500 mm."""
    yy, xx = np.mgrid[: CAM.height_px, : CAM.width_px]
    disc = (xx - 300) ** 2 + (yy - 250) ** 2 < 60**2
    return np.where(disc, 600.0 + 0.3 * (xx - 300), 1500.0).astype(np.float32)


def frames_per_s(fn: Callable[[], object], seconds: float) -> float:
    for _ in range(5):
        fn()
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        fn()
        n += 1
    return n / elapsed


def runs(
    est: HandPoseEstimator, session, frame: np.ndarray, x: torch.Tensor
) -> dict[str, Callable[[], object]]:
    """The measured functions: network only and end to end, eager PyTorch and ONNX Runtime."""

    def network_eager() -> object:
        with torch.inference_mode():
            return est.model(x)

    def end_to_end_onnx() -> object:
        c = preprocess(frame, CAM, est.crop)
        joints_mm = session.run([OUTPUT_NAMES[0]], {INPUT_NAME: c.depth[None, None]})[0]
        return joints_from_crop_frame(joints_mm, c.com_uvd[None], CAM)

    return {
        "network_eager": network_eager,
        "network_onnx": lambda: session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()}),
        "end_to_end_eager": lambda: est.predict(frame, CAM),
        "end_to_end_onnx": end_to_end_onnx,
    }


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="released model folder (default: random paper-size weights)")
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    return p


def main(args: argparse.Namespace) -> dict:
    if args.checkpoint:
        est = HandPoseEstimator.from_pretrained(args.checkpoint)
    else:
        torch.manual_seed(0)
        est = HandPoseEstimator(CrossingNet(model_config("paper", convention="nyu")).eval())
    frame = hand_frame()
    crop = preprocess(frame, CAM, est.crop)
    x = torch.as_tensor(crop.depth)[None, None]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(est.model, Path(tmp) / "model.onnx")
        results["preprocess_only"] = round(
            frames_per_s(lambda: preprocess(frame, CAM, est.crop), args.seconds), 1
        )
        for threads in args.threads:
            torch.set_num_threads(threads)
            for name, fn in runs(est, onnx_session(onnx_path, threads), frame, x).items():
                results[f"{name}_{threads}t"] = round(frames_per_s(fn, args.seconds), 1)
                print(f"{name} {threads} thread(s): {results[f'{name}_{threads}t']} frames/s", flush=True)
    result = {"benchmark": "infer", "batch_size": 1, "frames_per_s": results}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
