"""The paper's claims on the synthetic benchmark: every run, one table, the figures.

Runs (each a `crossingnets train` run folder under --out, skipped when its result exists, so an
interrupted suite resumes where it stopped):
- Crossing Nets at label fractions 1 %, 2 %, 10 %, 100 % (with the unlabeled pool);
- the supervised-only baseline ("from scratch") and the DeepPrior-style baseline, same fractions,
  trained for as many L_pos steps as the Crossing Net's joint stage (equal steps), and again for
  five times as many (`-long`: closer to convergence, at a fifth of the joint stage's step cost);
- ablations at 2 % and 100 %: without L_smo, without L_gan, without unlabeled images.
Each run is evaluated on the synthetic test set and on NYU's real poses rendered
(`benchmarks/synth.py` builds both), with the community metric; wall times are recorded.

    python benchmarks/synth.py --out bench/
    python benchmarks/experiments.py --bench bench/ --out runs/experiments [--budget quick] [--only cn-0.02 ...]

Writes OUT/results.json, OUT/success_<test>.png|html and OUT/error_vs_labels.png|html; prints one
JSON line with every run's mean errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from crossingnets.camera import get_camera, uvd_to_xyz
from crossingnets.data.convert import read_centers
from crossingnets.data.preprocess import uvd_to_crop
from crossingnets.draw import contact_sheet, draw_skeleton
from crossingnets.evaluate import evaluate_uvd, ground_truth_from_store, predict_store
from crossingnets.files import read_uvd_text, shared_data_dir
from crossingnets.hand.conventions import NYU
from crossingnets.inference import HandPoseEstimator
from crossingnets.metrics import ErrorSummary, joint_errors_mm
from crossingnets.plots import save_figure, success_rate_figure
from crossingnets.train import TrainConfig, resume, train

FRACTIONS = (0.01, 0.02, 0.1, 1.0)
ABLATION_FRACTIONS = (0.02, 1.0)
TEST_SETS = ("test", "nyu_poses")  # stores under --bench
SUCCESS_AT_MM = (20, 40)
LONG_BASELINE_SCALE = 5
# The success-rate figures compare the three methods at few and all labels (the table has the rest).
CURVE_RUNS = [f"{m}-{p:g}" for m in ("cn", "scratch", "deepprior") for p in (0.02, 1.0)]


@dataclass(frozen=True)
class Run:
    name: str
    model: str  # crossingnet | scratch | deepprior
    label_fraction: float
    flags: dict = field(default_factory=dict)  # TrainConfig ablation fields
    unlabeled_pool: bool = True  # Crossing Nets only: add bench/unlabeled.h5
    steps_scale: int = 1  # baselines: supervised epochs = steps_scale x the budget's joint epochs


def all_runs() -> list[Run]:
    runs = [Run(f"cn-{p:g}", "crossingnet", p) for p in FRACTIONS]
    runs += [
        Run(f"{m}{suffix}-{p:g}", m, p, unlabeled_pool=False, steps_scale=scale)
        for suffix, scale in (("", 1), ("-long", LONG_BASELINE_SCALE))
        for m in ("scratch", "deepprior")
        for p in FRACTIONS
    ]
    for p in ABLATION_FRACTIONS:
        runs += [
            Run(f"cn-nosmo-{p:g}", "crossingnet", p, {"use_smo": False}),
            Run(f"cn-nogan-{p:g}", "crossingnet", p, {"use_gan": False}),
            Run(f"cn-nounlabeled-{p:g}", "crossingnet", p, {"use_unlabeled": False}, unlabeled_pool=False),
        ]
    return runs


# Epochs per stage (each len(train) / 64 steps: 112 on the benchmark's 7,200 training frames), so
# every run takes the same steps whatever its labels. "full" is the benchmark (about 100 min for
# the 18 runs on 2 CPU cores); "quick" a smoke run of the whole suite.
BUDGETS = {
    "full": {
        "epochs_vae": 60,
        "epochs_gan": 2,
        "epochs_joint": 4,
        "warmup_steps": 100,
        "channels_last": True,
    },
    "quick": {
        "epochs_vae": 5,
        "epochs_gan": 1,
        "epochs_joint": 1,
        "warmup_steps": 10,
    },
}


def run_one(run: Run, bench: Path, out: Path, budget: str, seed: int, device: str = "auto") -> dict:
    """Train (unless done) and evaluate one run; the result is cached in its folder."""
    folder = out / run.name
    result_file = folder / "result.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
    else:
        result = train_and_test(run, bench, folder, budget, seed, device)
    if "real_nyu_frame" not in result:
        result["real_nyu_frame"] = real_frame(folder / "model", folder / "real_nyu_frame.png")
    result_file.write_text(json.dumps(result, indent=1) + "\n")
    return result


def train_and_test(run: Run, bench: Path, folder: Path, budget: str, seed: int, device: str) -> dict:
    epochs = BUDGETS[budget]
    cfg = TrainConfig(
        model=run.model,
        label_fraction=run.label_fraction,
        seed=seed,
        epochs_supervised=run.steps_scale * epochs["epochs_joint"],
        **epochs,
        **run.flags,
    )
    unlabeled = bench / "unlabeled.h5" if run.model == "crossingnet" and run.unlabeled_pool else None
    if (folder / "checkpoint.pt").exists():
        summary = resume(folder, device=device, progress=False)
    else:
        summary = train(cfg, bench / "train.h5", folder, unlabeled=unlabeled, device=device, progress=False)
    result = {
        "run": dataclasses.asdict(run),
        "budget": budget,
        "train_wall_s": summary["elapsed_s"],
        "tests": {},
    }
    for test in TEST_SETS:
        store = bench / f"{test}.h5"
        if not store.exists():
            continue
        gt = ground_truth_from_store(store)
        pred = predict_store(folder / "model", store, batch_size=256)
        errors = evaluate_uvd(run.name, str(store), pred, gt.joints_uvd, gt.camera).summary
        result["tests"][test] = errors.to_dict(gt.convention.joint_names)
    return result


def real_frame(model: Path, figure: Path | None = None) -> dict[str, float] | None:
    """Mean joint error (mm) on the one real NYU frame (test frame 1), from the detected hand centre
    and from the Crossing Nets authors' centre; `figure`: a PNG of the crop (detected centre) with
    the estimate, beside the labels. None when the shared data is absent."""
    shared = shared_data_dir()
    png = shared / "depth_samples" / "nyu" / "depth_1_0000001.png"
    if not png.is_file():
        return None
    nyu, cam = shared / "nyu", get_camera("nyu")
    estimator = HandPoseEstimator.from_pretrained(model)
    truth_uvd = read_uvd_text(nyu / "nyu_test_groundtruth_label.txt", NYU.num_joints).joints_uvd[0]
    truth = uvd_to_xyz(truth_uvd, cam)
    authors = read_centers(nyu / "crossingnet_centers" / "center_uvd_test.mat")[0]
    out, estimates = {}, {}
    for name, centre in (("detected", None), ("authors", authors)):
        pred = estimator.predict_file(png, "nyu", center=centre)
        estimates[name] = pred
        out[f"{name}_centre_mm"] = float(joint_errors_mm(pred.joints_xyz_mm[None], truth[None]).mean())
    if figure is not None:
        pred = estimates["detected"]
        images = [
            draw_skeleton(pred.crop, uvd_to_crop(uvd, pred.center_uvd, cam, estimator.crop), NYU, scale=4)
            for uvd in (pred.joints_uvd, truth_uvd)
        ]
        contact_sheet(images, columns=2).save(figure)
    return out


def success_at(result: dict, test: str, mm: int) -> float:
    sr = result["tests"][test]["success_rate"]
    return sr["fraction_of_frames"][sr["thresholds_mm"].index(float(mm))]


def error_vs_labels_figure(results: dict[str, dict], test: str) -> go.Figure:
    fig = go.Figure()
    for prefix, label in (
        ("cn", "Crossing Nets"),
        ("scratch", "supervised only"),
        ("deepprior", "DeepPrior-style"),
        ("scratch-long", f"supervised only, {LONG_BASELINE_SCALE}x steps"),
        ("deepprior-long", f"DeepPrior-style, {LONG_BASELINE_SCALE}x steps"),
    ):
        xs, ys = [], []
        for p in FRACTIONS:
            r = results.get(f"{prefix}-{p:g}")
            if r and test in r["tests"]:
                xs.append(100 * p)
                ys.append(r["tests"][test]["mean_error_mm"])
        dash = "dash" if prefix.endswith("-long") else "solid"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label, line={"dash": dash}))
    fig.update_layout(
        title=f"Mean joint error vs labelled fraction ({test})",
        xaxis={"title": "labelled training frames (%)", "type": "log"},
        yaxis={"title": "mean joint error (mm)"},
        template="plotly_white",
    )
    return fig


def report(results: dict[str, dict], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for test in TEST_SETS:
        have = {k: r for k, r in results.items() if test in r["tests"] and k in CURVE_RUNS}
        if not have:
            continue
        summaries = {
            k: ErrorSummary(
                num_frames=r["tests"][test]["num_frames"],
                mean_error_mm=r["tests"][test]["mean_error_mm"],
                per_joint_error_mm=np.array(list(r["tests"][test]["per_joint_error_mm"].values())),
                thresholds_mm=np.array(r["tests"][test]["success_rate"]["thresholds_mm"]),
                success_rate=np.array(r["tests"][test]["success_rate"]["fraction_of_frames"]),
            )
            for k, r in have.items()
        }
        for ext in ("html", "png"):
            save_figure(
                success_rate_figure(summaries, title=f"Success rate ({test})"), out / f"success_{test}.{ext}"
            )
            save_figure(error_vs_labels_figure(results, test), out / f"error_vs_labels_{test}.{ext}")


def markdown_table(results: dict[str, dict]) -> str:
    head = (
        "| run | labels | "
        + " | ".join(
            f"{t} mean (mm) | {t} <= {SUCCESS_AT_MM[0]} | {t} <= {SUCCESS_AT_MM[1]}" for t in TEST_SETS
        )
        + " | real NYU frame (mm) | train wall (s) |"
    )
    lines = [head, "|" + "---|" * (4 + 3 * len(TEST_SETS))]
    for name, r in results.items():
        cells = []
        for t in TEST_SETS:
            if t in r["tests"]:
                cells += [f"{r['tests'][t]['mean_error_mm']:.2f}"] + [
                    f"{success_at(r, t, mm):.3f}" for mm in SUCCESS_AT_MM
                ]
            else:
                cells += ["-"] * 3
        real = r.get("real_nyu_frame")
        cells.append("-" if real is None else f"{real['detected_centre_mm']:.1f}")
        lines.append(
            f"| {name} | {100 * r['run']['label_fraction']:g} % | "
            + " | ".join(cells)
            + f" | {r['train_wall_s']:.0f} |"
        )
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", type=Path, help="folder built by benchmarks/synth.py")
    p.add_argument("--out", type=Path, help="folder of the run folders and results")
    p.add_argument("--budget", choices=sorted(BUDGETS), default="full")
    p.add_argument("--only", nargs="*", default=None, help="run only these, in this order (see --list)")
    p.add_argument("--list", action="store_true", help="list the runs and exit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda")
    return p


def main(args: argparse.Namespace) -> dict:
    runs = all_runs()
    if args.list:
        print("\n".join(r.name for r in runs))
        return {}
    if args.bench is None or args.out is None:
        raise SystemExit("--bench and --out are required (except with --list)")
    if args.only:
        unknown = set(args.only) - {r.name for r in runs}
        if unknown:
            raise SystemExit(f"unknown runs {sorted(unknown)}; see --list")
        by_name = {r.name: r for r in runs}
        runs = [by_name[name] for name in args.only]  # in the order given
    args.out.mkdir(parents=True, exist_ok=True)
    results = {r.name: run_one(r, args.bench, args.out, args.budget, args.seed, args.device) for r in runs}
    report(results, args.out)
    print(markdown_table(results))
    summary = {k: {t: v["tests"][t]["mean_error_mm"] for t in v["tests"]} for k, v in results.items()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(get_args_parser().parse_args())
