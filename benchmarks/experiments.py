"""The paper's claims at the release recipe (issue 12): labels, a tuned supervised control, ablations.

Runs (each a `crossingnets train` run folder under --out; a finished run keeps its result.json, a
killed one resumes from its checkpoint, so an interrupted suite loses only the run in progress):
- `cn-P-sS`: the Crossing Net with the release recipe (`--preset release`) at label fraction P and
  seed S: the pose VAE on the labelled poses, the posterior stage on the labelled crops (the
  generator learns to render them on every 3rd step), then the adversarial stage, whose GAN real
  side and batch-norm statistics see every training crop and the unlabeled pool, with L_smo;
- `sup-P-sS`: the supervised-only control, the same network, data, augmentation (in-plane turns),
  optimiser and schedule, trained on the labelled crops alone: the VAE, then the posterior stage
  for as long as the Crossing Net's posterior and adversarial stages take (`SUP_EPOCHS`; wall times
  are recorded to check), no generator, no unlabeled crop (batch norm re-estimated on the
  labelled crops);
- `dp-P-sS`: the DeepPrior-style regressor (Oberweger et al., 2015) on the same network (the
  control's trunk and posterior head, `posterior_network`), data, augmentation, optimiser and
  epochs as the control, regressing the coefficients of a 30-component linear PCA prior instead of
  the VAE's latent;
- ablations of the Crossing Net: `cn-nosmo` (no L_smo), `cn-nogan` (no GAN terms), `cn-nounlabeled`
  (the GAN and batch norm see the labelled crops only);
- `cn-long`: the Crossing Net at about the control's wall time, which the kinematic generator
  made the Crossing Net's run undercut: 3 posterior epochs instead of 1, 10 render epochs instead
  of 2 (the generator the refinement draws with);
- beyond the paper, `cn-mt`: the Crossing Net plus a mean teacher on the unlabeled crops (the
  student's joints from a crop turned in-plane against the weights' moving average's joints from
  the crop as it is, turned alike; `w_consistency`; the average warming up, `ema_warmup`, and
  the teacher's batch norm on its batch's statistics), at the label fractions read with two seeds;
- beyond the paper, `cn-pl`: pseudo-labels. The finished `cn` run of the same fraction and seed
  estimates its unlabeled frames (9 turned copies each; `crossingnets pseudo-label`), the labels
  whose turned estimates agree within `PL_MAX_SPREAD_MM` are kept, and its posterior and
  adversarial stages run again from its weights on the labelled and pseudo-labelled crops. Its wall
  time counts the first run, the pseudo-labelling and the second run. `cn-pl50` keeps the half of
  the frames whose turned estimates agree best instead (`--keep-fraction 0.5`: at 8 mm a 30 mm
  model kept 1.7 % of them). `cn-rpl50` does the same on a seeded subset of `PL_REFINED_FRAMES`
  unlabeled frames whose labels the generator refines first (`--refine-iterations`, ~0.2 s a frame:
  the analysis-by-synthesis labels of a model that draws hands); `cn-rpl50x4` on four times as many;
- `cn-again`: the control of the pseudo-label runs, the same second round from the same weights
  on the labelled crops alone, so that what the pseudo-labels add is read apart from what more
  training adds.
Each run is tested with one estimate per crop on the synthetic test, NYU's test poses rendered and
the independent renderer's crops (detected centre; `benchmarks/pose_accuracy.py` builds the sets):
mean joint error, success at 20 and 40 mm (and the curve from 0 to 80 mm), and wall time. A model
with a kinematic generator is also tested refined (`refine_iterations`) on the first
`REFINED_TEST_FRAMES` frames of each set, beside its network alone on the same frames.

    python benchmarks/experiments.py --data runs/data/rand_train.h5 --out runs/experiments \
        [--only cn-0.02-s0 sup-0.02-s0] [--budget quick] [--list]

Writes OUT/results.json, OUT/error_vs_labels.png|html and OUT/success_curves.png|html; prints a
markdown table, then one JSON line with every run's figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from crossingnets.inference import HandPoseEstimator
from crossingnets.metrics import SUCCESS_THRESHOLDS_MM, success_rate
from crossingnets.models import PRESETS
from crossingnets.plots import save_figure, style_success_axes
from crossingnets.pseudo_labels import pseudo_label
from crossingnets.recipes import TrainConfig, train_config
from crossingnets.train import resume, train

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/ is not a package: its test sets
import pose_accuracy  # noqa: E402

FRACTIONS = (0.01, 0.02, 0.1, 1.0)
SEEDS = {0.02: (0, 1), 1.0: (0, 1)}  # two seeds where the claims are read; one elsewhere
ABLATION_FRACTIONS = (0.02, 1.0)
TEST_SETS = ("synthetic_test", "nyu_poses", "second_renderer_detect")
SUCCESS_AT_MM = (20.0, 40.0)
# Epochs (of len(train) / 64 steps) per stage. An adversarial epoch costs ~2.4 posterior epochs of
# the Crossing Net (release r3: 16 vs 6.6 min), whose posterior epochs cost ~1.35 of the control's
# (no generator step), so the control's posterior stage runs SUP_EPOCHS for about the same wall
# time. Measured at 2 % (two runs side by side, BENCHMARKS.md): with the strided stem 26.7 min for
# the Crossing Net, 20.1 for the control; with r7's residual stem 31.9 and 32.5 (2026-12-02).
BUDGETS = {
    "suite": {"epochs_vae": 4, "epochs_render": 2, "epochs_posterior": 1, "epochs_adversarial": 1},
    "quick": {"epochs_vae": 1, "epochs_render": 1, "epochs_posterior": 1, "epochs_adversarial": 1},  # smoke
}
# The Crossing Net's generator learns as a renderer during the posterior stage (one step in 3: the
# release preset before it gave the generator its own stage) and, since the kinematic generator
# (whose loss needs no crop: ~1 min for 2 epochs), in a short render stage of its own first.
RENDER_EVERY = 3
SUP_EPOCHS = {"suite": 4, "quick": 2}
# With the kinematic generator (no GAN step of its own, session 16) the Crossing Net's suite run
# takes 18 min where the control takes 32 (2026-12-02, one core each; a posterior epoch ~5.8 min, a
# render epoch ~0.5): `cn-long` spends the difference on both (at 2 %, after 2 render epochs, the
# generator's hand lay 7.7 mm from the labels, r8's 3.7 after 30).
CN_LONG_EPOCHS = {"epochs_posterior": 3, "epochs_render": 10}
ROTATE_DEG = 30.0  # both methods' in-plane turn augmentation (the bundle's)
W_CONSISTENCY = 1.0  # the mean teacher's weight: as much as the labelled joints' error
PL_MAX_SPREAD_MM = 8.0  # pseudo-labels kept where the turned estimates lie this close to their mean
PL_KEEP_FRACTION = 0.5  # cn-pl50: the share of the unlabeled frames kept, those that agree best
PL_REFINED_FRAMES = 6000  # cn-rpl50: unlabeled frames estimated and refined (~20 min on one core)
PL_MORE_REFINED_FRAMES = 24000  # cn-rpl50x4: four times as many
REFINE_ITERATIONS = PRESETS["release"].refine_iterations  # cn-rpl50's labels, the refined tests
REFINED_TEST_FRAMES = 400  # the first frames of each test set tested refined too (~1.3 min a set)
SECOND_ROUNDS = ("cn-pl", "cn-again")  # methods that continue the `cn` run of their fraction and seed


@dataclass(frozen=True)
class Run:
    name: str
    method: str  # cn | sup | dp | cn-pl (a second cn round on its pseudo-labels) | cn-again (without)
    label_fraction: float
    seed: int = 0
    flags: dict = field(default_factory=dict)  # TrainConfig fields of an ablation
    keep_fraction: float | None = None  # cn-pl: keep this share of the frames, not those within 8 mm
    refine: int = 0  # cn-pl: the generator's refinement iterations of each pseudo-label
    max_frames: int | None = None  # cn-pl: estimate a seeded subset of this many unlabeled frames


def all_runs() -> list[Run]:
    runs = []
    for p in FRACTIONS:
        for s in SEEDS.get(p, (0,)):
            runs += [Run(f"{m}-{p:g}-s{s}", m, p, s) for m in ("cn", "sup", "dp")]
    for p, seeds in SEEDS.items():
        runs += [
            Run(f"cn-mt-{p:g}-s{s}", "cn", p, s, {"w_consistency": W_CONSISTENCY, "ema_warmup": True})
            for s in seeds
        ]
        runs += [Run(f"cn-pl-{p:g}-s{s}", "cn-pl", p, s) for s in seeds]
        runs += [Run(f"cn-pl50-{p:g}-s{s}", "cn-pl", p, s, keep_fraction=PL_KEEP_FRACTION) for s in seeds]
        runs += [Run(f"cn-rpl50-{p:g}-s{s}", "cn-pl", p, s, keep_fraction=PL_KEEP_FRACTION,
                     refine=REFINE_ITERATIONS, max_frames=PL_REFINED_FRAMES) for s in seeds]  # fmt: skip
        runs += [Run(f"cn-rpl50x4-{p:g}-s{s}", "cn-pl", p, s, keep_fraction=PL_KEEP_FRACTION,
                     refine=REFINE_ITERATIONS, max_frames=PL_MORE_REFINED_FRAMES) for s in seeds]  # fmt: skip
        runs += [Run(f"cn-again-{p:g}-s{s}", "cn-again", p, s) for s in seeds]
    for p in ABLATION_FRACTIONS:
        for tag, flags in (("nosmo", {"use_smo": False}), ("nogan", {"use_gan": False}),
                           ("nounlabeled", {"use_unlabeled": False})):  # fmt: skip
            runs.append(Run(f"cn-{tag}-{p:g}-s0", "cn", p, 0, flags))
    for p, seeds in SEEDS.items():
        runs += [Run(f"cn-long-{p:g}-s{s}", "cn", p, s, CN_LONG_EPOCHS) for s in seeds]
    return runs


def run_config(run: Run, budget: str) -> TrainConfig:
    """The TrainConfig of a run: the release preset with the budget's epochs."""
    epochs = dict(BUDGETS[budget])
    common = {"label_fraction": run.label_fraction, "seed": run.seed, "rotate_deg": ROTATE_DEG}
    if run.method == "sup":
        epochs.update(epochs_render=0, epochs_posterior=SUP_EPOCHS[budget], epochs_adversarial=0)
        return train_config("release", **epochs, **common, render_every=0, use_unlabeled=False)
    if run.method == "dp":
        return train_config("release", model="deepprior", epochs_supervised=SUP_EPOCHS[budget], **common,
                            use_unlabeled=False)  # fmt: skip
    if run.method in SECOND_ROUNDS:  # the VAE and the generator come with the first round's weights
        epochs.update(epochs_vae=0, epochs_render=0)
    return train_config("release", **{**epochs, **common, "render_every": RENDER_EVERY, **run.flags})


def train_run(
    run: Run, data: Path, unlabeled: Path | None, folder: Path, budget: str, **extra: Path
) -> float:
    """Train (or resume) one run; its training wall time in seconds (the run's, resumed parts too).
    `extra`: `init` and `pseudo` of a pseudo-label round."""
    if (folder / "checkpoint.pt").exists():
        summary = resume(folder, device="cpu", progress=False)
    else:
        pool = unlabeled if run.method not in ("sup", "dp") and run.flags.get("use_unlabeled", True) else None
        summary = train(
            run_config(run, budget), data, folder, unlabeled=pool, device="cpu", progress=False, **extra
        )
    return float(summary["elapsed_s"])


def second_round(run: Run, args: argparse.Namespace, folder: Path) -> tuple[float, dict]:
    """The first round (the `cn` run of the same fraction and seed, run first if need be), for
    `cn-pl` its pseudo-labels, then the second round from its weights; the wall time of all of
    them and the labels' summary (none for `cn-again`)."""
    first = run_one(Run(f"cn-{run.label_fraction:g}-s{run.seed}", "cn", run.label_fraction, run.seed), args)
    model = args.out / first["run"]["name"] / "model"
    store, labels = (None, None) if run.method == "cn-again" else pseudo_labels(run, args, folder, model)
    wall_s = train_run(run, args.data, args.unlabeled, folder, args.budget, init=model, pseudo=store)
    if labels is None:
        return first["train_wall_s"] + wall_s, {}
    return first["train_wall_s"] + labels["wall_s"] + wall_s, {"pseudo_labels": labels}


def pseudo_labels(run: Run, args: argparse.Namespace, folder: Path, model: Path) -> tuple[Path, dict]:
    """The store of `model`'s pseudo-labels for a `cn-pl` run (written once) and their summary."""
    store, summary_file = folder / "pseudo.h5", folder / "pseudo.json"
    if not summary_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        labels = pseudo_label(model, [args.data], store, unlabeled=args.unlabeled, seed=run.seed,
                              label_fraction=run.label_fraction, val_fraction=run_config(run, args.budget).val_fraction,
                              max_spread_mm=PL_MAX_SPREAD_MM, keep_fraction=run.keep_fraction,
                              refine_iterations=run.refine, max_frames=run.max_frames, score=True,
                              overwrite=True, progress=False)  # fmt: skip
        summary_file.write_text(json.dumps({**labels, "wall_s": time.perf_counter() - t0}, indent=1) + "\n")
    return store, json.loads(summary_file.read_text())


def test_run(model: Path, bench: Path, refine: bool) -> dict[str, dict]:
    """Mean joint error, success rates and the success curve (SUCCESS_THRESHOLDS_MM) of `model`
    (one estimate per crop, the network alone) on each test set; with `refine` (a model whose
    kinematic generator trained) also `refined`: the figures of its network and of its refined
    estimate on the first REFINED_TEST_FRAMES frames."""
    estimator = HandPoseEstimator.from_pretrained(model, "cpu", 1, refine_iterations=0)
    refiner = None
    if refine and getattr(estimator.model.config, "gen_arch", None) == "kinematic":
        refiner = HandPoseEstimator.from_pretrained(model, "cpu", 1, refine_iterations=REFINE_ITERATIONS)
    out = {}
    for name in TEST_SETS:
        path = bench / pose_accuracy.STORE_SETS[name]
        if path.is_file():
            test = pose_accuracy.load_store_set(name, path)
            pose_accuracy.check_compatible(estimator, test)
            errors = pose_accuracy.model_errors(estimator, test)
            curve = success_rate(errors, SUCCESS_THRESHOLDS_MM)
            out[name] = {**pose_accuracy.figures(errors), "success_curve": curve.round(4).tolist()}
            if refiner is not None:
                first = pose_accuracy.first_frames(test, REFINED_TEST_FRAMES)
                out[name]["refined"] = {"frames": len(first.arrays["depth"]), "iterations": REFINE_ITERATIONS,
                                        "network": pose_accuracy.figures(errors[:REFINED_TEST_FRAMES]),
                                        "refined": pose_accuracy.figures(pose_accuracy.model_errors(refiner, first))}  # fmt: skip
    return out


def code_version() -> str | None:
    """The checkout's commit (`+` if it had uncommitted changes) a run was trained with: the
    preset's networks change between sessions, and a result is read against runs of the same code."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def run_one(run: Run, args: argparse.Namespace) -> dict:
    folder = args.out / run.name
    result_file = folder / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    extra: dict = {"commit": code_version()}
    if run.method in SECOND_ROUNDS:
        wall_s, labels = second_round(run, args, folder)
        extra.update(labels)
    else:
        wall_s = train_run(run, args.data, args.unlabeled, folder, args.budget)
    result = {"run": asdict(run), "budget": args.budget, "train_wall_s": wall_s,
              "tests": test_run(folder / "model", args.bench, refine=run.method not in ("sup", "dp")), **extra}  # fmt: skip
    result_file.write_text(json.dumps(result, indent=1) + "\n")
    return result


def error_vs_labels_figure(results: dict[str, dict], test: str) -> go.Figure:
    """Mean error against labelled fraction per method, each point the mean over its seeds; dashed,
    the refined estimate of the Crossing Nets tested refined (on the set's first REFINED_TEST_FRAMES;
    a control's `refined` figures, written before test_run stopped refining controls, drew with a
    generator it never trained)."""
    fig = go.Figure()
    for kind, label in (
        ("cn", "Crossing Net"),
        ("cn-long", "Crossing Net, longer (3 posterior, 10 render epochs)"),
        ("cn-mt", "Crossing Net + mean teacher"),
        ("cn-pl", "Crossing Net + pseudo-labels within 8 mm"),
        ("cn-pl50", "Crossing Net + the better half of the pseudo-labels"),
        ("cn-rpl50", "Crossing Net + the better half of refined pseudo-labels"),
        ("cn-rpl50x4", "Crossing Net + the better half of 4x as many refined pseudo-labels"),
        ("cn-again", "Crossing Net, a second round without pseudo-labels"),
        ("sup", "supervised only"),
        ("dp", "DeepPrior-style (linear prior, the control's network)"),
    ):
        tests = [(r["run"]["label_fraction"], r["tests"][test]) for name, r in results.items()
                 if name.rsplit("-", 2)[0] == kind and test in r["tests"]]  # fmt: skip
        readers = [(lambda f: f["mean_mm"], "", None)]
        if kind not in ("sup", "dp"):
            readers.append((lambda f: f["refined"]["refined"]["mean_mm"] if "refined" in f else None,
                            f", refined (first {REFINED_TEST_FRAMES} frames)", "dash"))  # fmt: skip
        for read, suffix, dash in readers:
            xs, ys = [], []
            for p in FRACTIONS:
                if errs := [e for q, f in tests if q == p and (e := read(f)) is not None]:
                    xs.append(100 * p)
                    ys.append(sum(errs) / len(errs))
            if xs:
                fig.add_trace(
                    go.Scatter(x=xs, y=ys, mode="lines+markers", name=label + suffix, line={"dash": dash})
                )
    fig.update_layout(
        title=f"Mean joint error vs labelled fraction ({test})",
        xaxis={"title": "labelled training frames (%)", "type": "log"},
        yaxis={"title": "mean joint error (mm)"},
        template="plotly_white",
    )
    return fig


def success_curves_figure(results: dict[str, dict], test: str) -> go.Figure:
    """The success curve of each run that recorded one (the runs committed before 2026-12-02 did not)."""
    fig = go.Figure()
    for name, r in results.items():
        if curve := r["tests"].get(test, {}).get("success_curve"):
            fig.add_trace(
                go.Scatter(x=SUCCESS_THRESHOLDS_MM, y=100 * np.asarray(curve), mode="lines", name=name)
            )
    fig.update_layout(title=f"Success rate ({test})", template="plotly_white")
    style_success_axes(fig)
    return fig


def markdown_table(results: dict[str, dict]) -> str:
    """One row per run: per test set its mean error, success at SUCCESS_AT_MM and, where the run
    was tested refined, "refined (network)" on the set's first REFINED_TEST_FRAMES frames."""
    head = "| run | labels | " + " | ".join(
        f"{t} (mm) | <= {SUCCESS_AT_MM[0]:g} | <= {SUCCESS_AT_MM[1]:g} | refined, first {REFINED_TEST_FRAMES} (network)"
        for t in TEST_SETS
    ) + " | train wall (min) |"  # fmt: skip
    lines = [head, "|" + "---|" * (3 + 4 * len(TEST_SETS))]
    for name, r in results.items():
        cells = []
        for t in TEST_SETS:
            f = r["tests"].get(t)
            if f is None:
                cells += ["-"] * 4
                continue
            cells += [f"{f['mean_mm']:.1f}"] + [
                f"{100 * f[f'success_{mm:g}mm']:.1f} %" for mm in SUCCESS_AT_MM
            ]
            ref = f.get("refined")
            cells.append(
                "-" if ref is None else f"{ref['refined']['mean_mm']:.1f} ({ref['network']['mean_mm']:.1f})"
            )
        lines.append(f"| {name} | {100 * r['run']['label_fraction']:g} % | " + " | ".join(cells)
                     + f" | {r['train_wall_s'] / 60:.1f} |")  # fmt: skip
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="training store (generate --randomize)")
    p.add_argument("--unlabeled", type=Path, default=Path("bench/unlabeled.h5"), help="extra unlabeled crops")
    p.add_argument("--bench", type=Path, default=Path("bench"), help="folder of the test stores")
    p.add_argument("--out", type=Path, help="folder of the run folders and results")
    p.add_argument("--budget", choices=sorted(BUDGETS), default="suite")
    p.add_argument("--only", nargs="*", default=None, help="run only these, in this order (see --list)")
    p.add_argument("--list", action="store_true", help="list the runs and exit")
    return p


def main(args: argparse.Namespace) -> dict:
    runs = all_runs()
    if args.list:
        print("\n".join(r.name for r in runs))
        return {}
    if args.data is None or args.out is None:
        raise SystemExit("--data and --out are required (except with --list)")
    if args.only:
        by_name = {r.name: r for r in runs}
        if unknown := set(args.only) - set(by_name):
            raise SystemExit(f"unknown runs {sorted(unknown)}; see --list")
        runs = [by_name[name] for name in args.only]  # in the order given
    if args.unlabeled is not None and not args.unlabeled.is_file():
        raise SystemExit(f"--unlabeled {args.unlabeled} not found")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {r.name: run_one(r, args) for r in runs}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for ext in ("html", "png"):
        save_figure(error_vs_labels_figure(results, TEST_SETS[0]), args.out / f"error_vs_labels.{ext}")
        save_figure(success_curves_figure(results, TEST_SETS[0]), args.out / f"success_curves.{ext}")
    print(markdown_table(results))
    summary = {k: {t: round(f["mean_mm"], 2) for t, f in r["tests"].items()} for k, r in results.items()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(get_args_parser().parse_args())
