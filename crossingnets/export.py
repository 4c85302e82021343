"""`crossingnets export-onnx`: the inference network (depth crop -> joints, latent) as ONNX.

The graph: input `depth` (B, 1, S, S) float32 crops in [-1, 1]; outputs `joints_mm` (B, J, 3)
joints in mm relative to the crop centre and `latent` (B, L). Add the crop centre in camera
coordinates (`crossingnets.inference.joints_from_crop_frame`) to get camera-frame joints.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from crossingnets.inference import resolve_model_folder
from crossingnets.models import LatentPoseModel
from crossingnets.runtime import INPUT_NAME, OPSET, OUTPUT_NAMES, export_onnx, onnx_session


def max_difference(model: LatentPoseModel, path: str | os.PathLike, depth: np.ndarray) -> float:
    """Largest absolute difference between PyTorch's and ONNX Runtime's outputs on crops (B, 1, S, S)."""
    with torch.inference_mode():
        ref = [t.numpy() for t in model.eval()(torch.as_tensor(depth))]
    got = onnx_session(path).run(list(OUTPUT_NAMES), {INPUT_NAME: depth.astype(np.float32)})
    return max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="released model folder (or a run folder)")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with ONNX Runtime")


def main(args: argparse.Namespace) -> int:
    model = LatentPoseModel.from_pretrained(resolve_model_folder(args.checkpoint))
    path = export_onnx(model, args.out, args.opset)
    report: dict[str, object] = {"onnx": str(path), "opset": args.opset}
    if not args.no_check:
        s = model.config.crop_px
        depth = np.random.default_rng(0).uniform(-1, 1, (4, 1, s, s)).astype(np.float32)
        report["max_abs_difference"] = max_difference(model, path, depth)
    print(json.dumps(report))
    return 0
