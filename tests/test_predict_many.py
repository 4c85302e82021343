"""`crossingnets predict` over many frames: folders, globs, stacked .npy sequences; JSON lines, CSV
and uvd text (read back by `crossingnets evaluate`); smoothing over the sequence."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crossingnets import cli
from crossingnets.camera import CAMERAS
from crossingnets.checkpoint import LatentStats
from crossingnets.files import read_uvd_text, write_uvd_text
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import MODELS, model_config
from crossingnets.predict import FrameRef, expand_inputs, predict_frames, smooth_predictions
from crossingnets.smoothing import OneEuroConfig, one_euro

CAM = CAMERAS["icvl"]


def _frame(u: float, v: float, d: float = 450.0) -> np.ndarray:
    yy, xx = np.mgrid[: CAM.height_px, : CAM.width_px]
    disc = (xx - u) ** 2 + (yy - v) ** 2 < 25**2
    return np.where(disc, d + 0.05 * (xx - u), 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = MODELS["crossingnet"](model_config("tiny", convention="icvl")).eval()
    stats = LatentStats.fit(np.random.default_rng(0).normal(size=(30, 23)))
    return model.save_pretrained(tmp_path_factory.mktemp("model"), latent_stats=stats)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """A short sequence: the 'hand' moves right and back, in mm."""
    return np.stack([_frame(140 + 6 * i, 120, 450 + 5 * i) for i in (0, 1, 2, 3, 2, 1)])


def _predict(model_dir: Path, *args: str) -> int:
    return cli.main(["predict", "--checkpoint", str(model_dir), *args])


def test_expand_inputs(tmp_path, frames):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, f in enumerate(frames[:3]):
        Image.fromarray(f.round().astype(np.uint16)).save(folder / f"f{i}.png")
    (folder / "notes.txt").write_text("not a frame")
    np.save(tmp_path / "stack.npy", frames)
    np.save(tmp_path / "one.npy", frames[0][..., None])  # (H, W, 1): one frame
    refs = expand_inputs(
        [folder, str(tmp_path / "seq" / "f[12].png"), tmp_path / "stack.npy", tmp_path / "one.npy"]
    )
    names = [r.name for r in refs]
    assert names == [
        "f0.png",
        "f1.png",
        "f2.png",
        "f1.png",
        "f2.png",
        *(f"stack.npy[{i}]" for i in range(6)),
        "one.npy",
    ]
    assert refs[5] == FrameRef(tmp_path / "stack.npy", 0)
    (tmp_path / "empty").mkdir()
    for bad, message in [
        (tmp_path / "empty", "holds no depth files"),
        (str(tmp_path / "*.jpg"), "matches no file"),
        (tmp_path / "nope.png", "not found"),
    ]:
        with pytest.raises(ValueError, match=message):
            expand_inputs([bad])


def test_formats_and_evaluate_reads_the_uvd(model_dir, tmp_path, frames, capsys):
    np.save(tmp_path / "seq.npy", frames)
    est = HandPoseEstimator.from_pretrained(model_dir)
    direct = est.predict(frames, CAM)
    assert _predict(model_dir, str(tmp_path / "seq.npy"), "--out", str(tmp_path / "p.jsonl")) == 0
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(6)) and records[0]["image"] == str(
        tmp_path / "seq.npy"
    )
    np.testing.assert_allclose([r["joints_xyz"] for r in records], direct.joints_xyz_mm, atol=1e-3)
    assert "predict: 100%" in capsys.readouterr().err  # the progress bar

    assert _predict(model_dir, str(tmp_path / "seq.npy"), "--out", str(tmp_path / "p.csv")) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text())))
    assert len(rows) == 6 * 16 and list(rows[0])[:4] == ["image", "frame", "joint", "name"]
    assert rows[16]["frame"] == "1" and rows[16]["joint"] == "0"
    np.testing.assert_allclose(float(rows[17]["u_px"]), direct.joints_uvd[1, 1, 0], atol=1e-3)

    assert _predict(model_dir, str(tmp_path / "seq.npy"), "--out", str(tmp_path / "p.txt")) == 0
    np.testing.assert_allclose(read_uvd_text(tmp_path / "p.txt", 16).joints_uvd, direct.joints_uvd, atol=1e-3)
    # evaluate reads it: against labels 10 px off in u on frame 0 only, the error is that frame's alone
    labels = direct.joints_uvd.astype(np.float64)
    labels[0, :, 0] += 10.0
    write_uvd_text(tmp_path / "gt.txt", labels)
    capsys.readouterr()
    cli.main(
        [
            "evaluate",
            "--dataset",
            "icvl",
            "--gt",
            str(tmp_path / "gt.txt"),
            "--pred",
            str(tmp_path / "p.txt"),
            "--json",
        ]
    )
    method = json.loads(capsys.readouterr().out)["methods"][0]
    assert method["num_frames"] == 6
    shift_mm = 10.0 * labels[0, :, 2] / CAMERAS["icvl"].fx
    assert method["mean_error_mm"] == pytest.approx(shift_mm.mean() / 6, abs=1e-3)


def test_folder_and_glob_in_order_with_stdout_formats(model_dir, tmp_path, frames, capsys):
    for i, f in enumerate(frames):
        Image.fromarray(f.round().astype(np.uint16)).save(tmp_path / f"frame_{i:02d}.png")
    assert _predict(model_dir, str(tmp_path), "--format", "uvd") == 0
    from_folder = capsys.readouterr().out
    assert _predict(model_dir, str(tmp_path / "frame_*.png"), "--format", "uvd") == 0
    assert capsys.readouterr().out == from_folder and len(from_folder.splitlines()) == 6


def test_smoothing_filters_the_sequence(model_dir, tmp_path, frames):
    np.save(tmp_path / "seq.npy", frames)
    est = HandPoseEstimator.from_pretrained(model_dir)
    refs = expand_inputs([tmp_path / "seq.npy"])
    raw = predict_frames(est, refs, camera="icvl")
    cfg = OneEuroConfig(rate_hz=15.0, min_cutoff_hz=0.5, beta=0.0)
    smooth = smooth_predictions(raw, cfg)
    xyz = np.stack([p.joints_xyz_mm for p in raw])
    np.testing.assert_allclose(np.stack([p.joints_xyz_mm for p in smooth]), one_euro(xyz, cfg), atol=1e-3)
    assert (
        np.abs(np.diff([p.joints_xyz_mm for p in smooth], axis=0)).mean()
        < np.abs(np.diff(xyz, axis=0)).mean()
    )
    # uvd follows the smoothed xyz, with each frame's camera
    np.testing.assert_allclose(smooth[3].joints_uvd, _uvd(smooth[3]), atol=1e-2)
    args = [str(tmp_path / "seq.npy"), "--smooth", "--fps", "15", "--min-cutoff", "0.5", "--beta", "0"]
    assert _predict(model_dir, *args, "--out", str(tmp_path / "s.txt")) == 0
    np.testing.assert_allclose(
        read_uvd_text(tmp_path / "s.txt").joints_uvd, np.stack([p.joints_uvd for p in smooth]), atol=1e-3
    )


def _uvd(pred):
    from crossingnets.camera import xyz_to_uvd

    return xyz_to_uvd(pred.joints_xyz_mm, pred.camera)


def test_units_cameras_and_errors_from_the_command_line(model_dir, tmp_path, frames, capsys):
    np.save(tmp_path / "metres.npy", frames / 1000)
    with pytest.raises(
        SystemExit, match=r"depth image metres.npy\[0\]: .*if this is a frame in metres, choose m"
    ):
        _predict(model_dir, str(tmp_path / "metres.npy"))
    assert _predict(model_dir, str(tmp_path / "metres.npy"), "--depth-unit", "m", "--format", "uvd") == 0
    in_m = capsys.readouterr().out
    np.save(tmp_path / "mm.npy", frames)
    assert _predict(model_dir, str(tmp_path / "mm.npy"), "--format", "uvd") == 0
    assert in_m == capsys.readouterr().out
    cam = [str(v) for v in (CAM.fx, CAM.fy, CAM.cx, CAM.cy)]
    assert _predict(model_dir, str(tmp_path / "mm.npy"), "--intrinsics", *cam, "--format", "uvd") == 0
    assert capsys.readouterr().out == in_m
    (tmp_path / "cam.json").write_text(
        json.dumps(
            {"width": 640, "height": 480, "fx": 2 * CAM.fx, "fy": 2 * CAM.fy, "ppx": 320.5, "ppy": 240.5}
        )
    )
    assert (
        _predict(
            model_dir, str(tmp_path / "mm.npy"), "--camera", str(tmp_path / "cam.json"), "--format", "uvd"
        )
        == 0
    )
    assert capsys.readouterr().out == in_m  # a 640x480 camera file, halved for 320x240 frames
    for args, message in [
        (["--camera", "d435"], "RealSense D435 camera is 1280x720 or 848x480"),
        (["--camera", "nyu", "--intrinsics", *cam], "drop --camera nyu"),
        (["--out", str(tmp_path / "p.xyz")], "cannot tell the format of p.xyz"),
        (["--depth-unit", "furlong"], "depth unit 'furlong' is not understood"),
        (["--smooth", "--fps", "0"], "rate_hz must be > 0"),
    ]:
        with pytest.raises(SystemExit, match=message):
            _predict(model_dir, str(tmp_path / "mm.npy"), *args)
    assert not (tmp_path / "p.xyz").exists()
