"""The trainer under torchrun: 2 CPU processes with gloo on the tiny preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from crossingnets.checkpoint import load_training_state
from crossingnets.distributed import process_group
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


SESSION = """
import sys, torch, torch.distributed as dist
from crossingnets.distributed import process_group
with process_group("cpu") as d:
    total = torch.tensor([d.rank + 1.0])
    dist.all_reduce(total)
    assert d.world == 2 and total.item() == 3.0
assert not dist.is_initialized()  # left on the way out
open(f"{sys.argv[1]}/left{d.rank}", "w").close()
"""


def test_process_group_is_left_on_the_way_out(tmp_path: Path) -> None:
    """A process that exits with gloo's threads running can abort ("terminate called without an
    active exception", SIGABRT), failing a finished torchrun run: training leaves its group."""
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [*torchrun, str(script), str(tmp_path)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "left0").exists() and (tmp_path / "left1").exists()


def test_a_group_the_caller_made_is_the_caller_s_to_leave(monkeypatch) -> None:
    """Under a caller's own group (a one-process gloo group here), training joins it and leaves it
    standing. (Making a second group in the torchrun processes of the test above raced: gloo's
    re-connection found the first group's closed ports.)"""
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun says; the group below is the caller's
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:0", rank=0, world_size=1)
    try:
        with process_group("cpu") as d:
            assert (d.rank, d.world) == (0, 1)
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
