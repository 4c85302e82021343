"""Real kills: `crossingnets train`, `generate` and `convert` (and `train` under torchrun) run as
subprocesses, are killed with SIGKILL, and are run again (`train --resume`) until they finish; the
result must be bit for bit an uninterrupted run's, and no truncated checkpoint, weights file, sheet
or store may ever sit under its final name.

The kills land where a kill can do harm: at an optimisation step of each stage, just before a
checkpoint write, half-way through writing a checkpoint, a weights file or a batch of a store, and
just before a finished file's rename. The child process sends itself the SIGKILL at that point
(`BOOT`: no handler and no cleanup run, exactly as for a kill from outside), so the points are
exact whatever the load of the machine. CI runs one plan of a few kills per command;
`CROSSINGNETS_KILLS=N` (`benchmarks/kill_resume.py`) adds N kills at points drawn at random.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from crossingnets import cli
from crossingnets.checkpoint import CONFIG_FILE, LATENT_FILE, WEIGHTS_FILE, load_training_state
from crossingnets.data.store import load_arrays
from crossingnets.trainer import CHECKPOINT_FILE, METRICS_FILE

KILLS_ENV = "CROSSINGNETS_KILLS"  # extra kills at random points per command (a benchmark run)
SEED_ENV = "CROSSINGNETS_KILL_SEED"

# Run in the child instead of `python -m crossingnets.cli ARGS`: `BOOT TARGET N ARGS` kills the
# process at the N-th TARGET event. Events: `step` (an optimisation step starts), `save` (a
# checkpoint is about to be written), `checkpoint` / `weights` (torch.save / safetensors' save_file
# has written half of its file), `append` (half of a batch is in the store), `rename` (a complete
# file is about to get its final name), `time` (N ms after the start: anywhere), `none` (never).
BOOT = r"""
import os, signal, sys

target, nth, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 is killed; torchrun ends the rest
    target = "none"
calls = [0]


def reached():
    calls[0] += 1
    return calls[0] == nth


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def before(fn):
    def wrapper(*args, **kwargs):
        if reached():
            die()
        return fn(*args, **kwargs)
    return wrapper


def half_written(write):
    def wrapper(obj, path, *args, **kwargs):
        write(obj, path, *args, **kwargs)
        if reached():
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            die()
    return wrapper


if target in ("step", "save"):
    from crossingnets.trainer import Trainer
    name = {"step": "train_step", "save": "save"}[target]
    setattr(Trainer, name, before(getattr(Trainer, name)))
elif target in ("checkpoint", "weights"):
    import crossingnets.checkpoint as ck
    if target == "checkpoint":
        ck.torch.save = half_written(ck.torch.save)
    else:
        ck.save_file = half_written(ck.save_file)
elif target == "append":
    from crossingnets.data.store import StoreWriter
    append = StoreWriter.append
    def half_append(self, **batch):
        if not reached():
            return append(self, **batch)
        append(self, **{k: v[: max(1, len(v) // 2)] for k, v in batch.items()})
        self._file.flush()
        die()
    StoreWriter.append = half_append
elif target == "rename":
    os.replace = before(os.replace)
elif target == "time":  # N milliseconds after the start, wherever the run is
    import threading
    threading.Timer(nth / 1000, die).start()

from crossingnets.cli import main
sys.exit(main(argv))
"""

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
Kill = tuple[str, int]  # (event, n): the child dies at the n-th such event after it starts


def run_with_kills(
    command: Callable[[], list[str]], kills: list[Kill], check: Callable[[], None], boot: Path
) -> int:
    """Run `command()` (a crossingnets command line, or a torchrun one ending in one) under BOOT once
    per kill, then once to the end; after each kill `check()` the files under final names. Returns
    the number of runs that were killed (a kill whose event never came lets its run finish)."""
    killed = 0
    for event, nth in [*kills, ("none", 0)]:
        args = command()
        launcher = args[: args.index("--")] if "--" in args else [sys.executable]
        cli = args[args.index("--") + 1 :] if "--" in args else args
        done = subprocess.run(
            [*launcher, str(boot), event, str(nth), *cli],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode == 0:
            if event != "none":
                continue  # the event did not come before the run ended; the next kill gets a try
            return killed
        assert event != "none", f"the last run failed:\n{done.stderr[-3000:]}"
        assert done.returncode in (-signal.SIGKILL, 1), (
            f"{event} {nth}: exit {done.returncode}\n{done.stderr[-3000:]}"
        )
        killed += 1
        check()
    raise AssertionError("unreachable")


def random_kills(events: list[str], most: int, max_ms: int = 20_000) -> list[Kill]:
    """CROSSINGNETS_KILLS kills drawn at random: an event (the n-th within the first `most`), or a
    time after the start (up to `max_ms`, startup included)."""
    rng = random.Random(int(os.environ.get(SEED_ENV, "0")))
    kills = []
    for _ in range(int(os.environ.get(KILLS_ENV, "0"))):
        event = rng.choice([*events, "time"])
        kills.append((event, rng.randint(200, max_ms) if event == "time" else rng.randint(1, most)))
    return kills


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    path = tmp_path / "boot.py"
    path.write_text(BOOT)
    return path


# -- train ------------------------------------------------------------------------------------------
# tiny preset on 40 frames (32 train, 8 validation), batches of 8: 4 steps an epoch; stages vae (2
# epochs, steps 1-8), gan (1, steps 9-12), joint (2, steps 13-20); a checkpoint every 3 steps and
# at every epoch's and stage's end, released weights at every stage's end.
TRAIN_KILLS: list[Kill] = [
    ("checkpoint", 2),  # vae: half of the second checkpoint written (steps 1-6 done)
    ("weights", 2),  # gan's end: half of the second model.safetensors written (vae's and gan's)
    ("save", 3),  # joint: after its first epoch's metrics line (step 16), before that epoch's checkpoint
]  # CI's few; kills at steps and at random times: benchmarks/kill_resume.py


def check_run_folder(out: Path) -> None:
    """Every file under a final name of a run folder is complete."""
    if (out / CHECKPOINT_FILE).exists():
        load_training_state(out / CHECKPOINT_FILE)
    if (out / CONFIG_FILE).exists():
        json.loads((out / CONFIG_FILE).read_text())
    if (out / METRICS_FILE).exists():
        [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    model = out / "model"
    if (model / CONFIG_FILE).exists():
        json.loads((model / CONFIG_FILE).read_text())
        load_file(model / WEIGHTS_FILE)
        load_file(model / LATENT_FILE)


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    """The weights of a finished run: its checkpoint's and the released ones, its progress."""
    state = load_training_state(out / CHECKPOINT_FILE)
    released = load_file(out / "model" / WEIGHTS_FILE)
    progress = {k: torch.tensor(state[k]) for k in ("stage_index", "epoch", "step", "global_step")}
    return {**{f"checkpoint.{k}": v for k, v in state["model"].items()}, **{f"model.{k}": v for k, v in released.items()}, **progress}  # fmt: skip


def assert_same_run(ref: Path, got: Path) -> None:
    a, b = final_weights(ref), final_weights(got)
    assert a["stage_index"] == 3, "the reference run did not finish its 3 stages"
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"the killed and resumed run ends with other weights: {differ[:5]}"
    steps = [
        [m["global_step"] for m in map(json.loads, (p / METRICS_FILE).read_text().splitlines())]
        for p in (ref, got)
    ]
    assert steps[0] == steps[1], f"metrics lines differ: {steps}"


def train_command(store: Path, out: Path, launcher: list[str] = ()) -> Callable[[], list[str]]:
    """The train command line: a fresh run, or --resume once the run holds a checkpoint."""

    def command() -> list[str]:
        head = [*launcher, "--"] if launcher else []
        if (out / CHECKPOINT_FILE).exists():
            return [*head, "train", "--out", str(out), "--resume", "--no-progress"]
        return [*head, "train", "--data", str(store), "--out", str(out), "--preset", "tiny", "--device", "cpu", "--no-progress"]  # fmt: skip

    return command


def test_train_killed_anywhere_resumes_bit_for_bit(tmp_path, toy_store, boot, record_property):
    store = toy_store(tmp_path / "toy.h5", 40)
    ref, out = tmp_path / "ref", tmp_path / "killed"
    assert cli.main(train_command(store, ref)()) == 0
    events = ["step", "save", "checkpoint", "weights", "rename"]
    kills = TRAIN_KILLS + random_kills(events, 8)
    killed = run_with_kills(train_command(store, out), kills, lambda: check_run_folder(out), boot)
    assert killed >= len(TRAIN_KILLS)
    assert_same_run(ref, out)
    record_property("kills", killed)
    record_property("leftovers", len(leftovers(out)))


def test_resume_drops_the_metrics_lines_its_checkpoint_does_not_account_for(tmp_path, toy_store):
    """A run killed between an epoch's metrics line and its checkpoint wrote the line once; the
    resumed run writes it again. The checkpoint counts its lines, and resuming keeps only those."""
    from crossingnets import train as T
    from crossingnets.recipes import train_config

    cfg = train_config("tiny", model="deepprior", stage="supervised", save_every=1000)
    out = tmp_path / "run"
    T.train(cfg, toy_store(tmp_path / "toy.h5", 40), out, progress=False, max_steps=6)  # epoch 1 + 2 steps
    lines = (out / METRICS_FILE).read_text().splitlines()
    assert len(lines) == 1 and load_training_state(out / CHECKPOINT_FILE)["metrics_lines"] == 1
    (out / METRICS_FILE).write_text(
        "\n".join([*lines, '{"epoch": 2, "written by": "the killed run"}']) + "\n"
    )
    assert T.resume(out, progress=False)["finished"]
    epochs = [json.loads(line)["epoch"] for line in (out / METRICS_FILE).read_text().splitlines()]
    assert epochs == [1, 2]


@pytest.mark.slow
def test_two_process_training_killed_resumes_bit_for_bit(tmp_path, toy_store, boot, record_property):
    """torchrun, 2 gloo processes (58 training frames, 3 steps an epoch): rank 0 is killed half-way
    through a checkpoint write (its 5th: steps 1-6 done, the vae stage's end), torchrun ends rank 1;
    the resumed run ends with the weights of an uninterrupted one."""
    store = toy_store(tmp_path / "toy.h5", 72)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ref, out = tmp_path / "ref", tmp_path / "killed"
    cmd = [*torchrun, "-m", "crossingnets.cli", *train_command(store, ref)()]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    kills = [("checkpoint", 5)] + random_kills(["step", "save", "checkpoint", "weights", "rename"], 6)
    killed = run_with_kills(train_command(store, out, torchrun), kills, lambda: check_run_folder(out), boot)
    assert killed >= 1
    assert_same_run(ref, out)
    record_property("kills", killed)


# -- generate and convert ---------------------------------------------------------------------------
def assert_same_store(ref: Path, got: Path) -> None:
    a, b = load_arrays(ref), load_arrays(got)
    assert all(np.array_equal(a[k], b[k]) for k in a), f"{got} differs from {ref}"
    with h5py.File(ref) as f, h5py.File(got) as g:
        assert dict(f.attrs) == dict(g.attrs)


def leftovers(folder: Path) -> list[str]:
    """Temporary files the kills left behind (never under a final name)."""
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def run_store_command(
    tmp_path: Path, boot: Path, command: list[str], kills: list[Kill], beside: list[str], record_property
) -> None:
    """Run a store-writing command (`--out` appended) once in this process for the reference, then
    under kills: after each, the store and the files `beside` it (suffixes of its name: the
    skipped-frames list, or any other output flag given with OUT) are complete if present."""
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"

    def expand(store: Path) -> list[str]:
        return [a.replace("OUT", str(store)) for a in [*command, "--out", "OUT"]]

    assert cli.main(expand(ref)) == 0

    def check() -> None:
        if out.exists():
            assert_same_store(ref, out)
        for suffix in beside:
            if Path(f"{out}{suffix}").exists():
                assert Path(f"{out}{suffix}").read_bytes() == Path(f"{ref}{suffix}").read_bytes()

    killed = run_with_kills(lambda: expand(out), kills, check, boot)
    assert killed >= 2
    assert_same_store(ref, out)
    check()
    record_property("kills", killed)
    record_property("leftovers", len(leftovers(tmp_path)))


def test_generate_killed_anywhere_reruns_to_the_same_store(tmp_path, boot, record_property):
    """40 frames in 3 batches, and the contact sheet: killed in the second batch, and with the store
    complete under its final name but the sheet not yet renamed."""
    command = [
        "generate",
        "-n",
        "40",
        "--seed",
        "3",
        "--crop-px",
        "32",
        "--sheet",
        "OUT.sheet.png",
        "--overwrite",
    ]
    kills = [("append", 2), ("rename", 2)] + random_kills(["append", "rename"], 3)
    run_store_command(tmp_path, boot, command, kills, [".sheet.png"], record_property)


def test_convert_killed_anywhere_reruns_to_the_same_store(tmp_path, boot, record_property):
    """6 ICVL frames and a missing one (skipped, listed beside the store): killed in the batch, and
    with the store complete under its final name but the list not yet renamed."""
    root = tmp_path / "icvl"
    depth = root / "Testing" / "Depth" / "seq"
    depth.mkdir(parents=True)
    v, u = np.mgrid[:240, :320]
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        frame = np.where((u - 150 - 3 * i) ** 2 + (v - 120) ** 2 < 900, 400 + i, 0).astype(np.uint16)
        Image.fromarray(frame).save(depth / f"image_{i:04d}.png")
        uvd = rng.uniform([130, 100, 380], [170, 140, 420], (16, 3))
        lines.append(f"seq/image_{i:04d}.png " + " ".join(f"{x:.3f}" for x in uvd.ravel()))
    lines.append("seq/missing.png " + " ".join(["200 120 400"] * 16))
    (root / "Testing" / "test_seq_1.txt").write_text("\n".join(lines) + "\n")
    command = [
        "convert",
        "icvl",
        str(root),
        "--split",
        "test",
        "--crop-px",
        "16",
        "--skip-bad",
        "--overwrite",
    ]
    kills = [("append", 1), ("rename", 2)] + random_kills(["append", "rename"], 2)
    run_store_command(tmp_path, boot, command, kills, [".skipped.txt"], record_property)
