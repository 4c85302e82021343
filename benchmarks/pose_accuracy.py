"""Pose accuracy of a released model on every test set, beside the mean-pose predictor and the pose
VAE's own floor.

Test sets (each skipped, with the reason printed, where its file is missing):
- synthetic_test: bench/test.h5, our renderer, a seed never trained on (`benchmarks/synth.py`);
- nyu_poses: bench/nyu_poses.h5, NYU's real test poses rendered by our renderer;
- second_renderer_detect / second_renderer_labels: an independent renderer's frames
  (`benchmarks/second_renderer.py`), cropped at the detected centre / at the labels' centre;
- real_nyu_frame: the one raw NYU test frame in the shared data, from the detected centre;
- with --raw: synthetic_test_raw and second_renderer_raw, the same renderers' raw frames (same
  seeds) through the whole inference path, `HandPoseEstimator.predict`: the detected centre and,
  for models with `recenter_passes`, the re-crop on the predicted palm.

For each set: the model's mean joint error (community metric, `crossingnets.metrics`) and success
rate at 20 and 40 mm (fraction of frames whose worst joint is within); the same for the mean-pose
predictor (the training store's mean joints around the crop centre, predicted for every frame), the
yardstick a model that learnt nothing reaches; and the pose VAE's reconstruction of the set's own
labels (encode_pose -> decode_latent), a floor under any estimate through the latent.

    python benchmarks/pose_accuracy.py --checkpoint checkpoints/cn-nyu-synth [--bench bench/]

Prints a markdown table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from crossingnets.camera import Intrinsics, get_camera, uvd_to_xyz
from crossingnets.data.preprocess import NoHandError
from crossingnets.data.store import StoreInfo, load_arrays, read_info
from crossingnets.data.synthetic import GenerateConfig, render_batch
from crossingnets.data.training import frames_from_arrays
from crossingnets.files import read_uvd_text, shared_data_dir
from crossingnets.hand.conventions import get_convention
from crossingnets.inference import HandPoseEstimator
from crossingnets.metrics import joint_errors_mm, success_rate
from crossingnets.models import LatentPoseModel

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/ is not a package: its sibling scripts

STORE_SETS = {  # test set -> store under --bench
    "synthetic_test": "test.h5",
    "nyu_poses": "nyu_poses.h5",
    "second_renderer_detect": "second_renderer_detect.h5",
    "second_renderer_labels": "second_renderer_labels.h5",
}
REAL_FRAME = "real_nyu_frame"
RAW_SETS = ("synthetic_test_raw", "second_renderer_raw")  # with --raw N
SUCCESS_AT_MM = (20.0, 40.0)


@dataclass(frozen=True)
class TestSet:
    """Crops as stores hold them, with their centres and labels."""

    name: str
    info: StoreInfo  # convention, camera, crop of the frames
    arrays: dict[str, np.ndarray]  # depth (N, 1, S, S), joints_xyz (N, J, 3) mm, com_uvd (N, 3)


def load_store_set(name: str, path: Path) -> TestSet:
    return TestSet(name, read_info(path), load_arrays(path))


def first_frames(test: TestSet, n: int | None) -> TestSet:
    """The set's first `n` frames (all for None): a quicker reading where each frame is costly."""
    return test if n is None else dataclasses.replace(test, arrays={k: v[:n] for k, v in test.arrays.items()})


def load_real_frame(estimator: HandPoseEstimator, shared: Path) -> TestSet | str:
    """NYU test frame 1 (raw depth, its label), cropped at the detected centre by the estimator's
    own path (`predict_file`: detection, metric-cube crop); a reason string where files are missing."""
    png = shared / "depth_samples" / "nyu" / "depth_1_0000001.png"
    labels = shared / "nyu" / "nyu_test_groundtruth_label.txt"
    missing = [str(p) for p in (png, labels) if not p.is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    conv = estimator.convention
    if conv.name != "nyu":
        return f"the model uses the {conv.name} convention; the real frame is labelled in nyu's"
    cam = get_camera("nyu")
    truth = uvd_to_xyz(read_uvd_text(labels, conv.num_joints).joints_uvd[:1], cam)
    pred = estimator.predict_file(png, "nyu")  # centre detected
    arrays = {
        "depth": pred.crop[None, None].astype(np.float32),
        "joints_xyz": truth.astype(np.float32),
        "com_uvd": pred.center_uvd[None],
    }
    return TestSet(REAL_FRAME, StoreInfo(conv, cam, estimator.crop, 1, {"source": str(png)}), arrays)


def synthetic_raw_frames(n: int, seed: int, cfg: GenerateConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The fixed generator's raw frames (H, W) mm and joints (J, 3) of `seed`, in the order
    `generate` renders them (the frames of the store, plus any it dropped for holding no hand)."""
    rng, conv, cam = np.random.default_rng(seed), get_convention(cfg.convention), get_camera(cfg.convention)
    for _ in range(-(-n // cfg.batch_frames)):
        batch = render_batch(rng, cfg.batch_frames, conv, cam, cfg)
        yield from zip(batch.depth_mm, batch.joints_xyz, strict=True)


def second_renderer_raw_frames(store: Path, labels: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The second renderer's raw frames of `store` (its seed and NYU rows), rendered again."""
    import second_renderer as sr  # here: trimesh is imported only where raw frames are asked for

    info = read_info(store)
    cam = get_camera("nyu")
    poses = sr.load_nyu_poses(labels, cam)[np.asarray(json.loads(info.attrs["nyu_rows"]))]
    for i, pose in enumerate(poses):
        frame = sr.render_frame(
            pose, sr.frame_rng(int(info.attrs["seed"]), i), cam, sr.SecondRendererConfig()
        )
        yield frame.depth_mm, frame.joints_xyz


def raw_errors(
    estimator: HandPoseEstimator, frames: Iterator[tuple[np.ndarray, np.ndarray]], cam: Intrinsics, n: int
) -> tuple[np.ndarray, int]:
    """(N, J) errors of `predict` on raw frames (the whole inference path), and how many frames
    it found no hand in (left out)."""
    errors, missed = [], 0
    for depth, joints in tqdm(itertools.islice(frames, n), total=n, desc="raw frames", leave=False):
        try:
            pred = estimator.predict(depth, cam)
        except NoHandError:
            missed += 1
            continue
        errors.append(joint_errors_mm(pred.joints_xyz_mm[None], joints[None])[0])
    return np.stack(errors), missed


def relative_joints(arrays: dict[str, np.ndarray], info: StoreInfo) -> np.ndarray:
    """Labels (N, J, 3) in mm relative to each frame's crop centre."""
    return arrays["joints_xyz"].astype(np.float64) - uvd_to_xyz(arrays["com_uvd"], info.camera)[:, None]


def mean_pose(arrays: dict[str, np.ndarray], info: StoreInfo) -> np.ndarray:
    """The mean-pose predictor: the mean (J, 3) of a training store's joints around the crop centre, mm."""
    return relative_joints(arrays, info).mean(axis=0)


def mean_pose_errors(mean_rel_mm: np.ndarray, test: TestSet) -> np.ndarray:
    """(N, J) errors in mm of predicting `mean_rel_mm` (J, 3) around every test crop's centre."""
    centre = uvd_to_xyz(test.arrays["com_uvd"], test.info.camera)
    return joint_errors_mm(centre[:, None] + mean_rel_mm[None], test.arrays["joints_xyz"])


def model_errors(estimator: HandPoseEstimator, test: TestSet) -> np.ndarray:
    """(N, J) errors in mm of the model's estimates from the crops (`predict_crops`)."""
    pred = estimator.predict_crops(test.arrays["depth"], test.arrays["com_uvd"], test.info.camera)
    return joint_errors_mm(pred.joints_xyz_mm, test.arrays["joints_xyz"])


@torch.inference_mode()
def vae_errors(model: LatentPoseModel, test: TestSet) -> np.ndarray | None:
    """(N, J) errors in mm of the pose VAE's reconstruction of the labels (encode_pose ->
    decode_latent), or None for a model without a pose encoder."""
    frames = frames_from_arrays(test.arrays, test.info, model.config.pose_unit_mm)
    device = next(model.parameters()).device
    try:
        latent = model.encode_pose(frames.pose.to(device), frames.root.to(device))
    except NotImplementedError:
        return None
    joints = model.decode_latent(latent).cpu().numpy() + frames.center_xyz.numpy()[:, None]
    return joint_errors_mm(joints, test.arrays["joints_xyz"])


def figures(errors_mm: np.ndarray) -> dict[str, float]:
    """(N, J) errors -> mean joint error and success rates at SUCCESS_AT_MM."""
    rates = success_rate(errors_mm, np.array(SUCCESS_AT_MM))
    return {
        "mean_mm": float(errors_mm.mean()),
        **{f"success_{t:g}mm": float(r) for t, r in zip(SUCCESS_AT_MM, rates, strict=True)},
    }


def check_compatible(estimator: HandPoseEstimator, test: TestSet) -> None:
    """Refuse a test set whose joints or crops are not the model's (its figures would mean nothing)."""
    if test.info.convention.name != estimator.convention.name:
        raise ValueError(
            f"{test.name}: labels use the {test.info.convention.name} convention, "
            f"the model {estimator.convention.name}"
        )
    if (test.info.crop.crop_px, test.info.crop.cube_mm) != (estimator.crop.crop_px, estimator.crop.cube_mm):
        raise ValueError(
            f"{test.name}: {test.info.crop.crop_px} px crops of a {test.info.crop.cube_mm:g} mm cube; the "
            f"model reads {estimator.crop.crop_px} px of {estimator.crop.cube_mm:g} mm"
        )


def evaluate_set(
    estimator: HandPoseEstimator, test: TestSet, mean_rel_mm: np.ndarray | None
) -> dict[str, object]:
    """Every figure of one test set."""
    check_compatible(estimator, test)
    out: dict[str, object] = {
        "frames": len(test.arrays["depth"]),
        "model": figures(model_errors(estimator, test)),
    }
    out["mean_pose"] = None if mean_rel_mm is None else figures(mean_pose_errors(mean_rel_mm, test))
    if out["mean_pose"] is not None:
        # < 1: better than predicting the mean pose; the fraction of the mean pose's error left
        out["model_over_mean_pose"] = out["model"]["mean_mm"] / out["mean_pose"]["mean_mm"]
    vae = vae_errors(estimator.model, test)
    out["vae_mm"] = None if vae is None else float(vae.mean())
    return out


def raw_sets(
    estimator: HandPoseEstimator, bench: Path, n: int, skipped: dict[str, str], wanted: set[str]
) -> dict[str, dict]:
    """The --raw sets among `wanted`: the synthetic test's generator (benchmarks/synth.py's seed and
    config) and the second renderer's frames, raw, through `predict`."""
    from_bench = {}
    test = bench / STORE_SETS["synthetic_test"]
    if "synthetic_test_raw" in wanted:
        if test.is_file():
            attrs = read_info(test).attrs
            cfg = GenerateConfig(
                convention="nyu", crop_px=estimator.crop.crop_px, cube_mm=estimator.crop.cube_mm
            )
            from_bench["synthetic_test_raw"] = synthetic_raw_frames(n, int(attrs["seed"]), cfg)
        else:
            skipped["synthetic_test_raw"] = f"{test} not found"
    second = bench / STORE_SETS["second_renderer_detect"]
    labels = shared_data_dir() / "nyu" / "nyu_test_groundtruth_label.txt"
    if "second_renderer_raw" in wanted:
        if second.is_file() and labels.is_file():
            from_bench["second_renderer_raw"] = second_renderer_raw_frames(second, labels)
        else:
            skipped["second_renderer_raw"] = f"{second} or {labels} not found"
    out = {}
    for name, frames in from_bench.items():
        errors, missed = raw_errors(estimator, frames, get_camera("nyu"), n)
        out[name] = {"frames": len(errors), "no_hand": missed, "model": figures(errors), "mean_pose": None,
                     "vae_mm": None}  # fmt: skip
        print(f"{name}: {out[name]['model']['mean_mm']:.1f} mm ({missed} frames without a hand)")
    return out


def markdown_table(results: dict[str, dict]) -> str:
    def mm(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    lines = [
        "| test set | frames | model (mm) | <= 20 mm | <= 40 mm | mean pose (mm) | model / mean pose | VAE (mm) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        m, p = r["model"], r["mean_pose"]
        ratio = r.get("model_over_mean_pose")
        lines.append(
            f"| {name} | {r['frames']} | {m['mean_mm']:.1f} | {m['success_20mm']:.1%} | {m['success_40mm']:.1%} "
            f"| {mm(p and p['mean_mm'])} | {'-' if ratio is None else f'{ratio:.2f}'} | {mm(r['vae_mm'])} |"
        )
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="released model folder (or a run folder)")
    p.add_argument("--bench", type=Path, default=Path("bench"), help="folder of the test stores")
    p.add_argument(
        "--train-store",
        type=Path,
        help="store whose mean pose is the baseline predictor (default: BENCH/train.h5)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--raw", type=int, default=0, help="also N raw frames of each renderer through predict()")
    p.add_argument("--rotations", type=int, help="test-time rotations averaged (default: the model's)")
    p.add_argument(
        "--refine-iterations",
        type=int,
        help="analysis-by-synthesis iterations after the estimate (default: the model's; 0 is fastest)",
    )
    p.add_argument("--sets", nargs="+", metavar="NAME", help="only these test sets (default: all of them)")
    p.add_argument(
        "--first", type=int, help="only the first N frames of each store's set (refinement's cost)"
    )
    return p


def main(args: argparse.Namespace) -> dict:
    estimator = HandPoseEstimator.from_pretrained(
        args.checkpoint, args.device, args.rotations, args.refine_iterations
    )
    train_store = args.train_store or args.bench / "train.h5"
    mean_rel = None
    if train_store.is_file():
        info = read_info(train_store)
        if info.convention.name != estimator.convention.name:
            raise ValueError(
                f"{train_store} uses the {info.convention.name} convention, the model {estimator.convention.name}"
            )
        mean_rel = mean_pose(load_arrays(train_store), info)
    else:
        print(f"no mean-pose predictor: training store {train_store} not found")
    skipped: dict[str, str] = {}
    sources: dict[str, object] = {}
    wanted = set(args.sets or [*STORE_SETS, REAL_FRAME, *RAW_SETS])
    if unknown := wanted - {*STORE_SETS, REAL_FRAME, *RAW_SETS}:
        raise SystemExit(
            f"unknown test sets {sorted(unknown)}; expected {[*STORE_SETS, REAL_FRAME, *RAW_SETS]}"
        )
    if args.first is not None and args.first < 1:
        raise SystemExit(f"--first must be >= 1, got {args.first}")
    for name, file in STORE_SETS.items():
        if name not in wanted:
            continue
        path = args.bench / file
        if path.is_file():
            sources[name] = path
        else:
            skipped[name] = f"{path} not found"
    if REAL_FRAME in wanted:
        sources[REAL_FRAME] = None  # loaded in the loop (it runs the model to find the hand)
    results: dict[str, dict] = {}
    bar = tqdm(sources.items(), desc="test sets", unit="set")
    for name, path in bar:
        bar.set_postfix_str(name)
        test = (
            first_frames(load_store_set(name, path), args.first)
            if path is not None
            else load_real_frame(estimator, shared_data_dir())
        )
        if isinstance(test, str):
            skipped[name] = test
            continue
        results[name] = evaluate_set(estimator, test, mean_rel)
        bar.write(f"{name}: {results[name]['model']['mean_mm']:.1f} mm")
    if args.raw:
        results.update(raw_sets(estimator, args.bench, args.raw, skipped, wanted))
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    print(markdown_table(results))
    result = {
        "benchmark": "pose_accuracy",
        "checkpoint": str(args.checkpoint),
        "test_rotations": len(estimator.rotation_angles_deg),
        "refine_iterations": estimator.refine.iterations,
        "first": args.first,
        "train_store": str(train_store) if mean_rel is not None else None,
        "sets": results,
        "skipped": skipped,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
