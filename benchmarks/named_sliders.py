"""Named sliders against their anchors: does one knob move its attribute and leave the others?

On the checkpoint's latent space, with the training poses of --data:
- fits the global anchors on --fit training frames (latent: the pose VAE's encoding of the label;
  attributes: measured on the label): GANSpace (the best principal direction per attribute) and
  InterFaceGAN (ridge normal, and the conditional direction W^+ e_k that holds the others in the
  linear model), and reports how linear each attribute is (R^2 on held-out frames);
- from --starts held-out training frames, asks every knob to move its attribute by one step
  (STEPS, toward the middle of the slider's range) with each method and the app's knob
  (`directions.edit_attribute`), and measures on the decoded pose: the change got, and how far every
  other attribute moved (deg or mm; mean over attributes, and the worst one) and the hand;
- reads the same moves back through the generator and the posterior (Gen(z) -> the network's
  estimate -> attributes), i.e. what the depth map a person looks at shows;
- times a named-slider move -> both figures, server side (edit, decode, generate, point cloud,
  figure JSON, depth PNG, nearest frames) over --latency small moves, as the app does.
Prints markdown tables, then one JSON line with every figure.

Usage: python benchmarks/named_sliders.py [--checkpoint DIR] [--data STORE.h5] [--index FILE]
           [--fit 30000] [--starts 200] [--latency 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from sklearn.linear_model import Ridge

from crossingnets.camera import uvd_to_xyz
from crossingnets.data.store import read_info
from crossingnets.explorer.attributes import ATTRIBUTE_NAMES, hand_attributes
from crossingnets.explorer.axes import LatentAxes
from crossingnets.explorer.directions import (
    GLOBAL_METHODS,
    difference,
    edit_attribute,
    fit_global_directions,
    global_move,
    measure,
    named_sliders,
    regression_targets,
)
from crossingnets.explorer.figures import generated_to_crop
from crossingnets.explorer.latent import latent_from_named, latent_view
from crossingnets.explorer.space import Explorer
from crossingnets.inference import HandPoseEstimator
from crossingnets_app.launch import TORCH_THREADS, bundled_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
# One step per knob: about half a training standard deviation (curls 76-86 deg, spread 12 mm,
# opposition 46 mm, yaw 52 deg, pitch 38 deg; roll is uniform over the circle).
STEPS = {
    "thumb curl": 10.0,
    "index curl": 30.0,
    "middle curl": 30.0,
    "ring curl": 30.0,
    "little curl": 30.0,
    "spread": 10.0,
    "thumb opposition": 20.0,
    "yaw": 30.0,
    "pitch": 20.0,
    "roll": 30.0,
}
METHODS = ("named slider (ours)", *reversed(GLOBAL_METHODS))
A = len(ATTRIBUTE_NAMES)


def training_latents(estimator: HandPoseEstimator, store: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n frames' (latents (n, L): the labels encoded, measures (n, M) of the labels)."""
    info = read_info(store)
    with h5py.File(store, "r") as f:
        joints = f["joints_xyz"][:n].astype(np.float64)
        center = uvd_to_xyz(f["com_uvd"][:n].astype(np.float64), info.camera)
    about = joints - center[:, None]  # mm about the crop centre, as the decoder gives them
    latents = np.concatenate([estimator.encode_joints(about[i : i + 4096]) for i in range(0, n, 4096)])
    measures = np.column_stack([hand_attributes(about, info.convention), about[:, info.convention.root]])
    return latents, measures


def linearity(u: np.ndarray, measures: np.ndarray, split: int) -> dict[str, float]:
    """Held-out R^2 of a ridge fit of each attribute on the whitened latents (roll: its sine and
    cosine, averaged)."""
    y = regression_targets(measures)
    r2 = [
        Ridge(alpha=1.0).fit(u[:split], y[:split, q]).score(u[split:], y[split:, q])
        for q in range(y.shape[1])
    ]
    out, q = {}, 0
    for name in ATTRIBUTE_NAMES:
        width = 2 if name == "roll" else 1
        out[name] = round(float(np.mean(r2[q : q + width])), 3)
        q += width
    return out


def read_back(estimator: HandPoseEstimator, latents: np.ndarray) -> np.ndarray:
    """(B, M) measures of what the posterior reads from the generated depth of each latent."""
    crops = generated_to_crop(estimator.generate_depth(latents))  # background at +1, as the app shows it
    with torch.inference_mode():
        out = [
            estimator.model(torch.as_tensor(crops[i : i + 256, None]))[1] for i in range(0, len(crops), 256)
        ]
    return measure(estimator, torch.cat(out).numpy())


def moves(estimator, axes, directions, starts, start_measures, sliders) -> tuple[dict, dict]:
    """Per method and knob, the moved latents (S, L) of every start; per knob the asked changes (S,)."""
    middle = (sliders.low + sliders.high) / 2
    out: dict[str, dict[str, np.ndarray]] = {m: {} for m in METHODS}
    asked: dict[str, np.ndarray] = {}
    basis = axes.sigma[:, None] * axes.components
    for k, name in enumerate(ATTRIBUTE_NAMES):
        sign = np.where(start_measures[:, k] < middle[k], 1.0, -1.0)
        if name == "roll":
            sign[:] = 1.0
        deltas = asked[name] = sign * STEPS[name]
        for method in GLOBAL_METHODS:
            du = np.stack(
                [
                    global_move(directions[method], m, name, d)
                    for m, d in zip(start_measures, deltas, strict=True)
                ]
            )
            out[method][name] = starts + du @ basis
        out[METHODS[0]][name] = np.stack(
            [
                edit_attribute(estimator, axes, z, name, m[k] + d).latent
                for z, m, d in zip(starts, start_measures, deltas, strict=True)
            ]
        )
    return out, asked


def effects(before: np.ndarray, after: np.ndarray, k: int, asked: np.ndarray) -> dict[str, float]:
    """How a move did: own change in the asked direction, others' mean and worst |change|, hand mm."""
    change = difference(after, before)
    own = change[:, k] * np.sign(asked)
    others = np.abs(np.delete(change[:, :A], k, axis=1))
    return {
        "got": round(float(own.mean()), 2),
        "others_mean": round(float(others.mean()), 2),
        "others_worst": round(float(others.mean(axis=0).max()), 2),
        "worst": ATTRIBUTE_NAMES[[i for i in range(A) if i != k][int(others.mean(axis=0).argmax())]],
        "hand_mm": round(float(np.linalg.norm(change[:, A:], axis=1).mean()), 2),
    }


def latency(ex: Explorer, repeats: int) -> dict[str, float]:
    """A named-slider move -> the latent tab's outputs, as app/ui.py makes them, in ms."""
    rng = np.random.default_rng(0)
    z = ex.examples[sorted(ex.examples)[0]] if ex.examples else ex.axes.mean
    named = latent_view(ex, z).named
    times = []
    for i in range(repeats + 1):
        k = int(rng.integers(A))
        value = float(np.clip(named[k] + rng.uniform(-15, 15), ex.sliders.low[k], ex.sliders.high[k]))
        start = time.perf_counter()
        moved, note = latent_from_named(ex, z, ATTRIBUTE_NAMES[k], value)
        view = latent_view(ex, moved, note)
        json.dumps(view.figure)
        view.depth.save(io.BytesIO(), format="PNG")
        if i:  # the first call warms up
            times.append(1000 * (time.perf_counter() - start))
        z, named = moved, view.named
    return {
        "p50": round(float(np.percentile(times, 50)), 1),
        "p95": round(float(np.percentile(times, 95)), 1),
    }


def table(results: dict, key: str, title: str) -> str:
    head = "| knob (step) | " + " | ".join(METHODS) + " |"
    lines = [
        f"**{title}**: change got / others moved, mean (worst), deg or mm",
        "",
        head,
        "|---" * (len(METHODS) + 1) + "|",
    ]
    for name in ATTRIBUTE_NAMES:
        cells = []
        for method in METHODS:
            e = results[key][method][name]
            cells.append(f"{e['got']:.1f} / {e['others_mean']:.1f} ({e['others_worst']:.1f} {e['worst']})")
        lines.append(f"| {name} ({STEPS[name]:g}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=bundled_checkpoint())
    parser.add_argument(
        "--data", type=Path, default=Path("runs/data/rand_train.h5"), help="its training store"
    )
    parser.add_argument("--index", type=Path, default=None, help="explorer index for the latency part")
    parser.add_argument("--fit", type=int, default=30000, help="training frames the anchors are fitted on")
    parser.add_argument("--starts", type=int, default=200, help="held-out frames every knob starts from")
    parser.add_argument("--latency", type=int, default=200, help="slider moves timed")
    return parser


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(TORCH_THREADS)
    estimator = HandPoseEstimator.from_pretrained(args.checkpoint)
    axes = LatentAxes.from_stats(estimator.latent_stats)
    latents, labels = training_latents(estimator, args.data, args.fit + args.starts)
    u = axes.to_sigmas(latents)
    split = int(0.9 * args.fit)
    directions = fit_global_directions(u[: args.fit], labels[: args.fit])
    starts = latents[args.fit :]
    before = measure(estimator, starts)
    before_depth = read_back(estimator, starts)
    moved, asked = moves(estimator, axes, directions, starts, before, named_sliders(estimator, axes))
    results: dict = {"decoded": {}, "depth": {}}
    for method in METHODS:
        results["decoded"][method], results["depth"][method] = {}, {}
        for k, name in enumerate(ATTRIBUTE_NAMES):
            after = moved[method][name]
            results["decoded"][method][name] = effects(before, measure(estimator, after), k, asked[name])
            results["depth"][method][name] = effects(
                before_depth, read_back(estimator, after), k, asked[name]
            )
    ex = Explorer.load(args.checkpoint, EXAMPLES, index=args.index)
    result = {
        "checkpoint": str(args.checkpoint),
        "data": str(args.data),
        "fit_frames": args.fit,
        "starts": args.starts,
        "r2_linear": linearity(u[: args.fit], labels[: args.fit], split),
        **results,
        "slider_to_figures_ms": latency(ex, args.latency),
        "nearest_panel": ex.index is not None,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    print("R^2 of a linear model of each attribute on the latent:", result["r2_linear"])
    print()
    print(table(result, "decoded", "Decoded pose (the skeleton)"))
    print()
    print(table(result, "depth", "Read back from the generated depth (the picture)"))
    print()
    print("named slider -> figures, server side, ms:", result["slider_to_figures_ms"])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
