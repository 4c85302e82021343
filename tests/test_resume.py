"""Resuming in the middle of a stage, where the optimisers hold state: a run stopped there and
resumed ends bit for bit where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crossingnets import train as T
from crossingnets.checkpoint import load_training_state
from crossingnets.recipes import train_config
from crossingnets.trainer import CHECKPOINT_FILE


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, toy_store) -> Path:
    return toy_store(tmp_path_factory.mktemp("data") / "toy.h5", 40)


def _state(run: Path) -> dict:
    return load_training_state(run / CHECKPOINT_FILE)


# One stage each, 32 training frames in batches of 8: 4 steps an epoch. Each stop falls after a
# few optimiser steps of the stage, mid-epoch, past the joint stage's 2 warm-up steps.
# The release stages also carry a one-cycle learning rate and a moving average of the weights.
@pytest.mark.parametrize(
    ("preset", "model", "stage", "stop_at"),
    [
        ("tiny", "crossingnet", "vae", 6),
        ("tiny", "crossingnet", "gan", 3),
        ("tiny", "crossingnet", "joint", 5),
        ("tiny", "deepprior", "supervised", 6),
        ("tiny-release", "crossingnet", "posterior", 5),
        ("tiny-release", "crossingnet", "adversarial", 3),
    ],
)
def test_mid_stage_resume_matches_an_uninterrupted_run(
    store: Path, tmp_path: Path, preset: str, model: str, stage: str, stop_at: int
) -> None:
    cfg = train_config(preset, model=model, stage=stage, label_fraction=0.5, save_every=1000)
    T.train(cfg, store, tmp_path / "full", progress=False)
    stopped = T.train(cfg, store, tmp_path / "resumed", progress=False, max_steps=stop_at)
    assert not stopped["finished"] and stopped["global_step"] == stop_at
    state = _state(tmp_path / "resumed")
    assert state["stage_index"] == 0 and state["step"] > 0  # inside the stage, mid-epoch
    moments = [s for o in state["optimizers"].values() for s in o["state"].values()]
    assert moments and all(int(s["step"]) > 0 for s in moments)  # Adam has state to restore
    assert T.resume(tmp_path / "resumed", progress=False)["finished"]
    ref, got = _state(tmp_path / "full")["model"], _state(tmp_path / "resumed")["model"]
    assert ref.keys() == got.keys()
    differ = [k for k in ref if not torch.equal(ref[k], got[k])]
    assert not differ, f"resumed weights differ from the uninterrupted run's: {differ[:5]}"


def test_each_epoch_is_validated_and_counted_in_the_checkpoint(store: Path, tmp_path: Path) -> None:
    """Every epoch's metrics line carries the validation error (none without a validation split),
    and the checkpoint counts exactly the lines written, which a resume keeps."""
    import json

    for val_fraction, validated in ((0.2, True), (0.0, False)):
        run = tmp_path / f"val{val_fraction}"
        cfg = train_config("tiny", stage="vae", epochs_vae=2, val_fraction=val_fraction)
        T.train(cfg, store, run, progress=False)
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(lines) == 2 and all(("val_vae_mm" in x) == validated for x in lines)
        assert _state(run)["metrics_lines"] == len(lines)


def test_checkpoints_from_before_counts_and_wall_time_resume(store: Path, tmp_path: Path) -> None:
    """A checkpoint without loss counts or wall time (older runs): every loss counted every step,
    the `steps` entry not a loss, wall time from zero."""
    from crossingnets.data.training import load_data
    from crossingnets.distributed import Dist
    from crossingnets.models import CrossingNet, model_config
    from crossingnets.recipes import data_options
    from crossingnets.trainer import Trainer

    cfg = train_config("tiny", stage="vae", epochs_vae=1)
    run = tmp_path / "run"
    T.train(cfg, store, run, progress=False)
    state = _state(run)
    state.pop("counts", None), state.pop("elapsed_s", None)
    state["sums"] = {"steps": 3.0, "loss_recons": 1.5}
    state["step"] = 3
    data = load_data(store, None, None, 50.0, **data_options(cfg))
    trainer = Trainer(
        cfg, data, run, CrossingNet(model_config("tiny", convention="icvl")), Dist(), {}, progress=False
    )
    trainer.load_state_dict(state)
    assert trainer.counts == {"loss_recons": 3} and "steps" not in trainer.sums
    assert trainer.elapsed_before == 0.0
