"""`crossingnets pipeline`: the release recipe's steps, their chaining, and resuming a pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crossingnets.checkpoint import read_pretrained_config
from crossingnets.models import LatentPoseModel
from crossingnets.pipeline import PIPELINES, STATE_FILE, command, plan, run_pipeline
from crossingnets.recipes import TRAIN_PRESETS


def test_release_plan_renders_its_stores_then_chains_its_stages(tmp_path):
    steps = plan(PIPELINES["release"], tmp_path)
    names = [s.name for s in steps]
    assert names == ["data/front", "data/every_side", "data/renderer", "data/renderer_every_side",
                     "data/pool", "vae", "render", "posterior", "adversarial"]  # fmt: skip
    for before, step in zip(steps[5:], steps[6:], strict=False):
        argv = list(step.argv)
        assert argv[argv.index("--init") + 1] == str(before.output)
    assert "--init" not in steps[5].argv
    every_side = steps[1].argv
    assert every_side[every_side.index("--max-palm-tilt-deg") + 1] == "180.0"
    for own in (steps[2].argv, steps[3].argv):
        assert "--randomize" not in own  # the generator learns the renderer's own hands
    assert steps[3].argv[list(steps[3].argv).index("--max-palm-tilt-deg") + 1] == "180.0"
    render = list(steps[6].argv)
    assert render[render.index("--data") + 1 : render.index("--unlabeled")] == [
        str(steps[2].output), str(steps[3].output)]  # fmt: skip
    posterior = list(steps[7].argv)
    assert posterior[posterior.index("--data") + 1 : posterior.index("--unlabeled")] == [
        str(steps[0].output), str(steps[1].output)]  # fmt: skip


def test_release_preset_trains_every_stage_the_pipeline_runs():
    cfg = TRAIN_PRESETS[PIPELINES["release"].train_preset]
    assert cfg.stages == tuple(s.stage for s in PIPELINES["release"].stages)


def test_commands_resume_a_stage_and_rerender_an_unrecorded_store(tmp_path):
    store, vae, render = plan(PIPELINES["tiny"], tmp_path)[0], *plan(PIPELINES["tiny"], tmp_path)[5:7]
    fresh = command(render, procs=2, resume=False)
    assert fresh[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc_per_node=2" in fresh
    assert fresh[fresh.index("crossingnets.cli") + 1 :] == list(render.argv)
    assert command(vae, procs=1, resume=True) == [
        sys.executable, "-m", "crossingnets.cli", "train", "--resume", "--out", str(vae.output)]  # fmt: skip
    assert "--overwrite" not in command(store, procs=2, resume=False)
    store.output.parent.mkdir(parents=True)
    store.output.write_bytes(b"")
    assert command(store, procs=2, resume=False)[-1] == "--overwrite"


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    return out, run_pipeline("tiny", out, procs=1)


def test_tiny_pipeline_trains_a_model_and_records_every_step(tiny_pipeline):
    out, state = tiny_pipeline
    assert list(state["steps"]) == [s.name for s in plan(PIPELINES["tiny"], out)]
    assert all(s["wall_s"] > 0 and not s["resumed"] for s in state["steps"].values())
    assert json.loads((out / STATE_FILE).read_text()) == state
    model = LatentPoseModel.from_pretrained(state["model"])
    assert model.kind == "crossingnet" and model.config.crop_px == 32
    recorded = read_pretrained_config(state["model"])["metadata"]
    assert (
        recorded["pipeline"]["settings"]["preset"] == "tiny"
        and recorded["pipeline"]["steps"] == state["steps"]
    )
    assert recorded["train_config"]["stage"] == "adversarial"  # the last stage's own record is kept
    render = json.loads((out / "render" / "config.json").read_text())
    assert render["paths"]["init"] == str(out / "vae") and render["train_config"]["stage"] == "render"


def test_a_finished_pipeline_runs_nothing_again_and_refuses_other_settings(tiny_pipeline, monkeypatch):
    out, state = tiny_pipeline

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a finished step ran again: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert run_pipeline("tiny", out, procs=1) == state
    with pytest.raises(SystemExit, match="records other settings"):
        run_pipeline("tiny", out, procs=2)


def test_a_training_preset_changed_in_the_code_is_not_taken_for_the_recorded_one(tiny_pipeline):
    """The record holds the presets the stages read: a folder made under other code is refused,
    naming what changed."""
    out, _ = tiny_pipeline
    recorded = json.loads((out / STATE_FILE).read_text())
    assert (
        recorded["settings"]["train_preset"]["epochs_posterior"]
        == TRAIN_PRESETS["tiny-release"].epochs_posterior
    )
    older = json.loads(json.dumps(recorded))
    older["settings"]["train_preset"]["epochs_posterior"] += 3
    older["settings"]["model_preset"]["gen_arch"] = "skeleton"
    other = out.parent / "older"
    other.mkdir()
    (other / STATE_FILE).write_text(json.dumps(older))
    with pytest.raises(
        SystemExit,
        match=r"train_preset.epochs_posterior: 5 -> 2; model_preset.gen_arch: 'skeleton' -> 'upsampling'",
    ):
        run_pipeline("tiny", other, procs=1)


def test_an_interrupted_stage_is_resumed_and_a_failed_step_stops_the_pipeline(tiny_pipeline, monkeypatch):
    out, state = tiny_pipeline
    recorded = json.loads((out / STATE_FILE).read_text())
    del recorded["steps"]["adversarial"]
    (out / STATE_FILE).write_text(json.dumps(recorded))
    calls = []

    def failing(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 3)

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(SystemExit, match="step adversarial failed .exit 3."):
        run_pipeline("tiny", out, procs=1)
    assert calls == [
        [sys.executable, "-m", "crossingnets.cli", "train", "--resume", "--out", str(out / "adversarial")]
    ]
    assert "adversarial" not in json.loads((out / STATE_FILE).read_text())["steps"]
