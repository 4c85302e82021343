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
