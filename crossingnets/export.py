"""`crossingnets export-onnx`: the inference network (depth crop -> joints, latent) as ONNX.

The graph: input `depth` (B, 1, S, S) float32 crops in [-1, 1]; outputs `joints_mm` (B, J, 3)
joints in mm relative to the crop centre and `latent` (B, L). Add the crop centre in camera
coordinates (`crossingnets.inference.joints_from_crop_frame`) to get camera-frame joints.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from crossingnets.files import atomic_output
from crossingnets.inference import resolve_model_folder
from crossingnets.models import LatentPoseModel

INPUT_NAME = "depth"
OUTPUT_NAMES = ("joints_mm", "latent")
OPSET = 17  # supported by every onnxruntime >= 1.14


def export_onnx(model: LatentPoseModel, path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write `model`'s inference path to `path` with a dynamic batch axis (atomic write)."""
    model = model.eval()
    s = model.config.crop_px
    dummy = torch.zeros(2, 1, s, s)
    path = Path(path)
    with atomic_output(path) as tmp, warnings.catch_warnings():
        # torch 2.9+ deprecates the TorchScript exporter; the dynamo one needs onnxscript, which
        # is not a dependency. Both give the same graph for this static network.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
            opset_version=opset,
            dynamo=False,
        )
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session for an exported model."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


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
