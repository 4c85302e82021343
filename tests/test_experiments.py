"""benchmarks/experiments.py: what each run trains, and the figure's grouping of runs."""

from __future__ import annotations

import json
import subprocess

import pytest
from benchmark_scripts import load_script


@pytest.fixture(scope="module")
def ex():
    return load_script("experiments")


def test_runs_and_their_configs(ex) -> None:
    runs = {r.name: r for r in ex.all_runs()}
    assert len(runs) == len(ex.all_runs())  # names are unique: each names a run folder
    assert {"cn-0.02-s0", "cn-0.02-s1", "sup-0.02-s1", "cn-mt-0.02-s1", "cn-nogan-1-s0"} <= set(runs)
    cn, sup = ex.run_config(runs["cn-0.02-s1"], "suite"), ex.run_config(runs["sup-0.02-s1"], "suite")
    for c in (cn, sup):  # the same labels, seed, turns and optimiser
        assert (c.label_fraction, c.seed, c.rotate_deg, c.lr, c.preset) == (
            0.02,
            1,
            ex.ROTATE_DEG,
            2e-3,
            "release",
        )
    assert (cn.epochs_posterior, cn.epochs_adversarial, cn.use_unlabeled) == (1, 1, True)
    assert (sup.epochs_posterior, sup.epochs_adversarial, sup.render_every, sup.use_unlabeled) == (
        4,
        0,
        0,
        False,
    )
    dp = ex.run_config(runs["dp-0.02-s1"], "suite")  # DeepPrior: the control's data and schedule
    assert (dp.model, dp.stages, dp.epochs_supervised, dp.use_unlabeled) == (
        "deepprior",
        ("supervised",),
        4,
        False,
    )
    assert (dp.label_fraction, dp.seed, dp.rotate_deg, dp.lr) == (
        sup.label_fraction,
        sup.seed,
        sup.rotate_deg,
        sup.lr,
    )
    mt = ex.run_config(runs["cn-mt-0.02-s1"], "suite")
    assert mt.w_consistency == ex.W_CONSISTENCY and mt.ema_warmup
    assert ex.run_config(runs["cn-nogan-1-s0"], "suite").use_gan is False
    assert (cn.epochs_render, sup.epochs_render) == (2, 0)  # the kinematic generator's own stage: cn only
    rpl = runs["cn-rpl50-0.02-s1"]  # refined pseudo-labels of a subset, the better half kept
    assert (rpl.method, rpl.refine, rpl.max_frames, rpl.keep_fraction) == ("cn-pl", 40, 6000, 0.5)
    assert ex.run_config(rpl, "suite").epochs_render == 0  # the generator comes with the first round
    long = ex.run_config(runs["cn-long-0.02-s0"], "suite")  # the control's wall time
    assert (long.epochs_render, long.epochs_posterior, long.epochs_adversarial) == (10, 3, 1)
    assert (long.render_every, long.label_fraction) == (ex.RENDER_EVERY, 0.02)


def test_error_figure_averages_seeds_per_method(ex) -> None:
    def result(fraction: float, mm: float) -> dict:
        return {"run": {"label_fraction": fraction}, "tests": {"synthetic_test": {"mean_mm": mm}}}

    results = {"cn-0.02-s0": result(0.02, 30.0), "cn-0.02-s1": result(0.02, 32.0), "cn-1-s0": result(1.0, 20.0),
               "cn-mt-0.02-s0": result(0.02, 25.0), "cn-nosmo-0.02-s0": result(0.02, 99.0)}  # fmt: skip
    traces = {
        t.name: (list(t.x), list(t.y)) for t in ex.error_vs_labels_figure(results, "synthetic_test").data
    }
    assert traces == {
        "Crossing Net": ([2.0, 100.0], [31.0, 20.0]),
        "Crossing Net + mean teacher": ([2.0], [25.0]),
    }
    refined = result(0.02, 28.0)
    refined["tests"]["synthetic_test"]["refined"] = {
        "refined": {"mean_mm": 24.0},
        "network": {"mean_mm": 29.0},
    }
    fig = ex.error_vs_labels_figure({**results, "cn-0.02-s1": refined}, "synthetic_test")
    traces = {t.name: (list(t.x), list(t.y), t.line.dash) for t in fig.data}
    assert traces["Crossing Net"] == ([2.0, 100.0], [29.0, 20.0], None)  # 30 and 28 averaged
    assert traces[f"Crossing Net, refined (first {ex.REFINED_TEST_FRAMES} frames)"] == ([2.0], [24.0], "dash")
    control = result(0.02, 27.0)
    control["tests"]["synthetic_test"]["refined"] = refined["tests"]["synthetic_test"]["refined"]
    names = [t.name for t in ex.error_vs_labels_figure({"sup-0.02-s0": control}, "synthetic_test").data]
    assert names == ["supervised only"]  # never a control's refinement: its generator never trained


def test_a_pseudo_label_round_runs_the_first_round_its_labels_then_the_second(
    ex, toy_store, tmp_path, monkeypatch
):
    """`cn-pl`: the `cn` run of its fraction and seed first, its pseudo-labels, then the posterior
    and adversarial stages again from its weights; the wall time counts all three."""
    data = toy_store(tmp_path / "toy.h5", 48, crop_px=64)
    pool = toy_store(tmp_path / "pool.h5", 16, crop_px=64, seed=4)
    (tmp_path / "bench").mkdir()
    toy_store(tmp_path / "bench" / "test.h5", 8, crop_px=64, seed=5)  # the synthetic test; no other set
    monkeypatch.setattr(ex, "PL_MAX_SPREAD_MM", 1e6)  # an all but untrained first round: keep every label
    args = ex.get_args_parser().parse_args(["--data", str(data), "--unlabeled", str(pool), "--out", str(tmp_path / "x"),
                                            "--bench", str(tmp_path / "bench"), "--budget", "quick", "--only", "cn-pl-1-s0"])  # fmt: skip
    ex.main(args)
    first, second = tmp_path / "x" / "cn-1-s0", tmp_path / "x" / "cn-pl-1-s0"
    result = json.loads((second / "result.json").read_text())
    labels, first_wall = (
        result["pseudo_labels"],
        json.loads((first / "result.json").read_text())["train_wall_s"],
    )
    assert labels["frames"] == labels["kept"] == 16  # every training label read: the pool alone
    config = json.loads((second / "config.json").read_text())
    assert config["paths"]["init"] == str(first / "model") and config["paths"]["pseudo"] == str(
        second / "pseudo.h5"
    )
    assert config["train_config"]["epochs_vae"] == 0 and config["num_labeled"] == 47 + 16  # 1 of 48 validated
    assert result["train_wall_s"] > first_wall + labels["wall_s"]
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert (result["commit"] or "").rstrip("+") == head  # the code it ran (none outside git)
    test = result["tests"]["synthetic_test"]
    assert set(result["tests"]) == {"synthetic_test"}  # the sets missing from --bench are left out
    curve = test["success_curve"]  # at 0, 1, ..., 80 mm
    assert len(curve) == 81 and curve == sorted(curve) and curve[0] == 0.0
    assert (curve[20], curve[40]) == (round(test["success_20mm"], 4), round(test["success_40mm"], 4))
    assert (tmp_path / "x" / "success_curves.png").stat().st_size > 0
    refined = test["refined"]  # a kinematic generator: tested refined too, beside its network alone
    assert (refined["frames"], refined["iterations"]) == (8, ex.REFINE_ITERATIONS)
    assert refined["network"]["mean_mm"] == pytest.approx(test["mean_mm"])  # all 8 frames
    assert refined["refined"]["mean_mm"] != refined["network"]["mean_mm"]


def test_the_better_half_of_the_labels_and_the_round_without_them(ex, toy_store, tmp_path):
    """`cn-pl50` keeps the half of the pool whose turned estimates agree best; `cn-again`, its
    control, runs the same second round from the same weights without pseudo-labels."""
    data = toy_store(tmp_path / "toy.h5", 48, crop_px=64)
    pool = toy_store(tmp_path / "pool.h5", 16, crop_px=64, seed=4)
    args = ex.get_args_parser().parse_args(["--data", str(data), "--unlabeled", str(pool), "--out", str(tmp_path / "x"),
                                            "--bench", str(tmp_path / "none"), "--budget", "quick",
                                            "--only", "cn-pl50-1-s0", "cn-again-1-s0"])  # fmt: skip
    ex.main(args)
    out = tmp_path / "x"
    half = json.loads((out / "cn-pl50-1-s0" / "result.json").read_text())["pseudo_labels"]
    assert (half["frames"], half["kept"]) == (16, 8)
    again = json.loads((out / "cn-again-1-s0" / "config.json").read_text())
    assert again["paths"]["init"] == str(out / "cn-1-s0" / "model") and again["paths"].get("pseudo") is None
    assert again["paths"]["unlabeled"] == str(pool)  # the same pool as the pseudo-label round's GAN
    assert again["train_config"]["epochs_vae"] == 0 and again["num_labeled"] == 47
    assert not (out / "cn-again-1-s0" / "pseudo.h5").exists()


def test_the_table_shows_refined_figures_where_a_run_has_them(ex) -> None:
    def figures(mm: float) -> dict:
        return {"mean_mm": mm, "success_20mm": 0.25, "success_40mm": 0.5}

    refined = {"frames": 400, "iterations": 40, "network": figures(30.0), "refined": figures(25.5)}
    results = {
        "cn-0.02-s0": {"run": {"label_fraction": 0.02}, "train_wall_s": 600.0,
                       "tests": {"synthetic_test": {**figures(29.0), "refined": refined}}},
        "sup-0.02-s0": {"run": {"label_fraction": 0.02}, "train_wall_s": 120.0,
                        "tests": {"synthetic_test": figures(27.0)}},
    }  # fmt: skip
    head, rule, cn, sup = ex.markdown_table(results).splitlines()
    assert head.count("|") == rule.count("|") == cn.count("|") == sup.count("|")
    assert "| 29.0 | 25.0 % | 50.0 % | 25.5 (30.0) |" in cn and cn.endswith("| 10.0 |")
    assert "| 27.0 | 25.0 % | 50.0 % | - |" in sup and "| - | - | - | - |" in sup  # sets it was not tested on


def test_the_control_is_not_tested_refined(ex, toy_store, tmp_path) -> None:
    """The supervised control trains no generator: a refinement would draw with an untrained one."""
    data = toy_store(tmp_path / "toy.h5", 24, crop_px=64)
    (tmp_path / "bench").mkdir()
    toy_store(tmp_path / "bench" / "test.h5", 4, crop_px=64, seed=5)
    args = ex.get_args_parser().parse_args(["--data", str(data), "--unlabeled", str(data), "--out", str(tmp_path / "x"),
                                            "--bench", str(tmp_path / "bench"), "--budget", "quick", "--only", "sup-1-s0"])  # fmt: skip
    test = ex.main(args) and json.loads((tmp_path / "x" / "sup-1-s0" / "result.json").read_text())["tests"]
    assert set(test) == {"synthetic_test"} and "refined" not in test["synthetic_test"]
