"""benchmarks/experiments.py: what each run trains, and the figure's grouping of runs."""

from __future__ import annotations

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
    mt = ex.run_config(runs["cn-mt-0.02-s1"], "suite")
    assert mt.w_consistency == ex.W_CONSISTENCY and mt.ema_warmup
    assert ex.run_config(runs["cn-nogan-1-s0"], "suite").use_gan is False


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
