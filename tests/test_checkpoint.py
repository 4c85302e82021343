"""Training state and released weights: round trips, strict loading, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.decomposition import PCA

from crossingnets.checkpoint import (
    LATENT_FILE,
    WEIGHTS_FILE,
    load_latent_stats,
    load_training_state,
    save_training_state,
)
from crossingnets.models import MODELS, CrossingNet, DeepPriorRegressor, LatentPoseModel, model_config
from crossingnets.pca import LatentStats


def _trained_like(kind: str) -> LatentPoseModel:
    """A tiny model with non-default weights and batch-norm statistics."""
    torch.manual_seed(0)
    model = MODELS[kind](model_config("tiny", convention="nyu"))
    model.init_from_pca(np.random.default_rng(0).normal(size=(50, 42)))
    model.train()
    for _ in range(3):
        model(torch.rand(6, 1, 32, 32) * 2 - 1)
    return model.eval()


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_save_load_pretrained_identical_outputs(kind: str, tmp_path: Path) -> None:
    model = _trained_like(kind)
    stats = LatentStats.fit(np.random.default_rng(1).normal(size=(40, 23)))
    model.save_pretrained(tmp_path, latent_stats=stats, metadata={"val_mm": 12.5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", LATENT_FILE, WEIGHTS_FILE]
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["kind"] == kind and meta["metadata"] == {"val_mm": 12.5}
    loaded = LatentPoseModel.from_pretrained(tmp_path)  # the base class accepts any kind
    assert type(loaded) is type(model) and not loaded.training
    depth = torch.rand(4, 1, 32, 32) * 2 - 1
    for a, b in zip(model(depth), loaded(depth), strict=True):
        assert torch.equal(a, b)
    assert np.array_equal(load_latent_stats(tmp_path).components, stats.components.astype(np.float32))


def test_from_pretrained_is_strict(tmp_path: Path) -> None:
    _trained_like("crossingnet").save_pretrained(tmp_path)
    assert load_latent_stats(tmp_path) is None
    with pytest.raises(ValueError, match="holds a 'crossingnet' model, not a 'deepprior'"):
        DeepPriorRegressor.from_pretrained(tmp_path)
    weights = load_file(tmp_path / WEIGHTS_FILE)
    del weights["align.fc.bias"]
    save_file(weights, tmp_path / WEIGHTS_FILE)
    with pytest.raises(RuntimeError, match="align.fc.bias"):
        CrossingNet.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a pretrained model folder"):
        CrossingNet.from_pretrained(tmp_path / "missing")


def test_training_state_loads_weights_only_and_writes_atomically(tmp_path: Path) -> None:
    model = _trained_like("crossingnet")
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(4, 1, 32, 32))[0].sum().backward()
    opt.step()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "config": model.config.to_dict(),
        "step": 3,
    }
    path = save_training_state(state, tmp_path / "checkpoint.pt")
    loaded = torch.load(path, weights_only=True)
    assert loaded["step"] == 3 and loaded["config"]["crop_px"] == 32
    assert all(torch.equal(v, loaded["model"][k]) for k, v in state["model"].items())
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises, the old file survives
        save_training_state({"bad": lambda: 0}, path)
    assert load_training_state(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_latent_stats_match_scikit_learn(tmp_path: Path) -> None:
    latents = np.random.default_rng(0).normal(size=(100, 5)) * [3.0, 2.0, 1.0, 0.5, 0.1]
    stats = LatentStats.fit(latents, n_components=3)
    pca = PCA(3).fit(latents)
    assert np.allclose(stats.explained_variance, pca.explained_variance_)
    assert np.allclose(np.abs(stats.components), np.abs(pca.components_))
    assert np.allclose(stats.std, latents.std(0)) and np.allclose(stats.max, latents.max(0))
    stats.save(tmp_path / "s.safetensors")
    back = LatentStats.load(tmp_path / "s.safetensors")
    assert np.allclose(back.mean, stats.mean, atol=1e-6)


def test_a_write_deletes_the_temporaries_of_killed_writers_only(tmp_path: Path) -> None:
    """A SIGKILLed writer leaves its half-written temporary; the next write of that file removes
    it, and leaves a running writer's and other files' temporaries alone."""
    import subprocess
    import sys

    from crossingnets.files import atomic_output

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid, live_pid = int(dead.stdout), os.getppid()
    orphan = tmp_path / f".model.{dead_pid}.abc123.tmp.safetensors"
    running = tmp_path / f".model.{live_pid}.def456.tmp.safetensors"
    other = tmp_path / f".other.{dead_pid}.ghi789.tmp.safetensors"
    for p in (orphan, running, other):
        p.write_bytes(b"half")
    with atomic_output(tmp_path / "model.safetensors") as tmp:
        tmp.write_bytes(b"whole")
    assert (tmp_path / "model.safetensors").read_bytes() == b"whole"
    assert not orphan.exists() and running.exists() and other.exists()
