"""`crossingnets adapt`: your frames -> crops -> a short adversarial stage from released weights ->
a released model `predict` loads, with batch-norm statistics of the synthetic crops; resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from crossingnets import cli
from crossingnets.adapt import (
    ADAPT_PRESETS,
    FRAMES_STORE,
    MODEL_FOLDER,
    RUN_FOLDER,
    SYNTHETIC_STORE,
    FrameSource,
    adapt,
    crop_frames,
    repeats_for_share,
    resume_adapt,
)
from crossingnets.camera import CAMERAS
from crossingnets.checkpoint import WEIGHTS_FILE
from crossingnets.data.store import load_arrays, read_info
from crossingnets.data.training import load_data
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import CrossingNet, LatentPoseModel, model_config
from crossingnets.models.batchnorm import recompute_running_stats
from crossingnets.predict import expand_inputs
from crossingnets.recipes import data_options

CAM = CAMERAS["nyu"]
TINY = ADAPT_PRESETS["tiny"]


def _frame(u: float, v: float, d: float = 600.0) -> np.ndarray:
    """A 'hand' in mm: a tilted disc, off-centre so that mirroring moves it."""
    yy, xx = np.mgrid[: CAM.height_px, : CAM.width_px]
    disc = (xx - u) ** 2 + ((yy - v) / 1.3) ** 2 < 40**2
    return np.where(disc, d + 0.3 * (xx - u) + 0.1 * (yy - v), 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = CrossingNet(model_config("tiny-release", convention="nyu", crop_px=32, cube_mm=250.0)).eval()
    return model.save_pretrained(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory, toy_store) -> Path:
    return toy_store(tmp_path_factory.mktemp("data") / "synthetic.h5", 40, convention="nyu")


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three frames with a hand and one with only a wall 2.5 m away, as 16-bit PNGs in mm."""
    folder = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(
        [
            _frame(250, 200),
            _frame(300, 260, 650),
            np.full((CAM.height_px, CAM.width_px), 2500.0),
            _frame(380, 230),
        ]
    ):
        Image.fromarray(np.rint(f).astype(np.uint16)).save(folder / f"f{i}.png")
    return folder


@pytest.fixture(scope="module")
def adapted(model_dir: Path, synthetic: Path, frames: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One adaptation through the command line."""
    torch.set_num_threads(1)  # module fixtures run before conftest's per-test thread setting
    out = tmp_path_factory.mktemp("runs") / "adapt"
    args = ["adapt", "--checkpoint", str(model_dir), "--frames", str(frames), "--camera", "nyu",
            "--data", str(synthetic), "--out", str(out), "--preset", "tiny", "--no-progress"]  # fmt: skip
    assert cli.main(args) == 0
    return out


def test_crops_store_holds_the_frames_with_a_hand_repeated_to_the_share(adapted: Path):
    info = read_info(adapted / FRAMES_STORE)
    train_frames = TINY.synthetic_frames - round(0.2 * TINY.synthetic_frames)  # tiny-release val_fraction
    assert (info.attrs["distinct_frames"], info.attrs["skipped_frames"]) == (3, 1)
    assert info.attrs["repeats"] == repeats_for_share(TINY.user_share, 3, train_frames) == 6
    depth = load_arrays(adapted / FRAMES_STORE)["depth"]
    assert depth.shape == (18, 1, 32, 32)
    np.testing.assert_array_equal(depth[:3], depth[3:6])  # copies, in order
    assert (depth[:3] < 1).mean() > 0.1  # the crops hold the hand


def test_adapted_model_is_released_and_predict_loads_it(adapted: Path, model_dir: Path, frames: Path, capsys):
    before, after = load_file(model_dir / WEIGHTS_FILE), load_file(adapted / MODEL_FOLDER / WEIGHTS_FILE)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("discriminator.") for k in changed)  # the posterior head and trunk trained
    assert not any(k.startswith("vae.") for k in changed)  # the pose VAE is frozen in this stage
    meta = json.loads((adapted / MODEL_FOLDER / "config.json").read_text())["metadata"]
    assert meta["adapted"]["frames_used"] == 3 and meta["stages_done"] == ["adversarial"]
    assert cli.main(["predict", "--checkpoint", str(adapted / MODEL_FOLDER), str(frames / "f0.png")]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    joints = np.asarray(record["joints_xyz"], float)
    assert joints.shape == (14, 3) and np.isfinite(joints).all()


def test_export_reestimates_batch_norm_on_the_synthetic_crops_alone(adapted: Path):
    exported = LatentPoseModel.from_pretrained(adapted / MODEL_FOLDER)
    trained = LatentPoseModel.from_pretrained(
        adapted / RUN_FOLDER / MODEL_FOLDER
    )  # the trainer's: pool statistics
    cfg = TINY.train_config()
    data = load_data(adapted / SYNTHETIC_STORE, None, None, 50.0, **data_options(cfg))
    recompute_running_stats(
        trained.depth_reader, data.train.depth, cfg.bn_frames, cfg.batch_size, torch.device("cpu")
    )
    buffers = dict(exported.named_buffers())
    for name, value in trained.named_buffers():
        torch.testing.assert_close(buffers[name], value, msg=name)
    pool = LatentPoseModel.from_pretrained(adapted / RUN_FOLDER / MODEL_FOLDER)
    name = "discriminator.trunk.1.running_mean"  # the first batch norm: your crops moved the pool's
    assert (dict(pool.named_buffers())[name] - buffers[name]).abs().max() > 1e-3


def test_left_hand_frames_give_the_crops_of_the_right_hand(model_dir: Path, tmp_path: Path):
    estimator = HandPoseEstimator.from_pretrained(model_dir)
    right, left = tmp_path / "right.npy", tmp_path / "left.npy"
    seq = np.stack([_frame(250, 200), _frame(380, 230, 700)])
    np.save(right, seq)
    np.save(left, seq[:, :, ::-1])
    r = crop_frames(estimator, expand_inputs([right]), FrameSource((str(right),), "nyu"), progress=False)
    lf = crop_frames(
        estimator, expand_inputs([left]), FrameSource((str(left),), "nyu", handedness="left"), progress=False
    )
    np.testing.assert_array_equal(lf.crops.crop, r.crops.crop)  # the model sees the right hand it knows
    np.testing.assert_allclose(lf.crops.center_uvd[:, 1:], r.crops.center_uvd[:, 1:])


def test_frames_without_any_hand_are_refused_naming_the_first(model_dir: Path, tmp_path: Path):
    estimator = HandPoseEstimator.from_pretrained(model_dir)
    path = tmp_path / "metres.npy"
    np.save(path, np.stack([_frame(250, 200), _frame(300, 200)]) / 1000.0)  # metres, read as mm
    with pytest.raises(ValueError, match=r"no hand in any of the 2 frames; the first: .*choose m"):
        crop_frames(estimator, expand_inputs([path]), FrameSource((str(path),), "nyu"), progress=False)


def test_interrupted_adaptation_resumes_to_the_same_model(model_dir, synthetic, frames, adapted, tmp_path):
    source = FrameSource((str(frames),), "nyu")
    out = tmp_path / "adapt"
    stopped = adapt(model_dir, source, synthetic, out, TINY, max_steps=1, progress=False)
    assert not stopped["finished"] and stopped["model"] is None and not (out / MODEL_FOLDER).exists()
    with pytest.raises(FileExistsError, match="--resume"):
        adapt(model_dir, source, synthetic, out, TINY, progress=False)
    done = resume_adapt(out, progress=False)
    assert done["finished"] and done["model"] == str(out / MODEL_FOLDER)
    resumed, whole = (load_file(p / MODEL_FOLDER / WEIGHTS_FILE) for p in (out, adapted))
    for name, value in whole.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0, msg=name)


def test_without_your_frames_it_fine_tunes_on_synthetic_frames_alone(model_dir, synthetic, frames, tmp_path):
    out = tmp_path / "control"
    control = replace(TINY, user_share=0.0)
    summary = adapt(model_dir, FrameSource((str(frames),), "nyu"), synthetic, out, control, progress=False)
    assert summary["finished"] and not (out / FRAMES_STORE).exists()
    assert (
        json.loads((out / RUN_FOLDER / "config.json").read_text())["num_images"] == 19
    )  # the synthetic crops


def test_bad_input_is_refused_with_its_reason(
    model_dir, synthetic, frames, adapted, tmp_path, toy_store, capsys
):
    other = toy_store(tmp_path / "icvl.h5", 10, convention="icvl")
    with pytest.raises(ValueError, match="generate synthetic frames with its settings"):
        adapt(model_dir, FrameSource((str(frames),), "nyu"), other, tmp_path / "x", TINY)
    with pytest.raises(SystemExit, match="drop --frames"):
        cli.main(["adapt", "--out", str(adapted), "--resume", "--frames", str(frames)])
    with pytest.raises(SystemExit, match="--checkpoint, --data required"):
        cli.main(["adapt", "--out", str(tmp_path / "y"), "--frames", str(frames)])
    with pytest.raises(SystemExit, match="not found"):
        cli.main(["adapt", "--out", str(tmp_path / "z"), "--frames", str(tmp_path / "nope.png"),
                  "--checkpoint", str(model_dir), "--data", str(synthetic)])  # fmt: skip
    with pytest.raises(ValueError, match="user_share"):
        replace(TINY, user_share=1.0)


def test_repeats_for_share():
    assert repeats_for_share(0.5, 10, 100) == 10  # 100 of yours beside 100 synthetic
    assert repeats_for_share(0.2, 10, 100) == 2  # 20 beside 100: a sixth
    assert repeats_for_share(0.5, 1000, 100) == 1  # never fewer than one copy
