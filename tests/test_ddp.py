"""The trainer under torchrun: 2 CPU processes with gloo on the tiny preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crossingnets.checkpoint import load_training_state
from crossingnets.trainer import CHECKPOINT_FILE, METRICS_FILE


@pytest.mark.slow
def test_two_gloo_processes_train_all_stages(tmp_path: Path, toy_store) -> None:
    store = toy_store(tmp_path / "toy.h5", 72)
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "crossingnets.cli", "train", "--data", str(store), "--out", str(out),
        "--preset", "tiny", "--device", "cpu", "--no-progress", "--epochs-vae", "1", "--epochs-joint", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    # The trainer checks at the end that both replicas hold identical weights.
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["finished"]
    meta = json.loads((out / "config.json").read_text())
    assert meta["world_size"] == 2
    # 58 training frames, 8 per process: 3 steps per epoch, each step seeing 16 frames.
    lines = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    assert [m["global_step"] for m in lines] == [3, 6, 9]
    state = load_training_state(out / CHECKPOINT_FILE)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
