"""HandPoseEstimator on files, raw frames and crops, the latent tools, and `crossingnets predict`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crossingnets import cli
from crossingnets.camera import CAMERAS, uvd_to_xyz
from crossingnets.checkpoint import LatentStats
from crossingnets.data.preprocess import NoHandError, preprocess
from crossingnets.inference import HandPoseEstimator, Prediction
from crossingnets.models import MODELS, model_config

CAM = CAMERAS["icvl"]


def _frame(u: float, v: float, d: float = 450.0) -> np.ndarray:
    """A 320x240 frame in mm holding one disc (the 'hand') at pixel (u, v), depth d."""
    yy, xx = np.mgrid[: CAM.height_px, : CAM.width_px]
    disc = (xx - u) ** 2 + (yy - v) ** 2 < 25**2
    return np.where(disc, d + 0.05 * (xx - u), 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = MODELS["crossingnet"](model_config("tiny", convention="icvl"))
    model.train()
    model(torch.rand(8, 1, 32, 32))  # non-trivial batch-norm statistics
    folder = tmp_path_factory.mktemp("model")
    stats = LatentStats.fit(np.random.default_rng(0).normal(size=(30, 23)))
    return model.eval().save_pretrained(folder, latent_stats=stats)


def test_predict_frame_and_batch(model_dir: Path) -> None:
    est = HandPoseEstimator.from_pretrained(model_dir)
    assert est.latent_stats is not None and est.crop.crop_px == 32
    frames = np.stack([_frame(150, 110), _frame(180, 140, 520.0)])
    one = est.predict(frames[0], CAM)
    assert one.joints_xyz_mm.shape == (16, 3) and one.joints_uvd.shape == (16, 3)
    assert one.center_uvd.shape == one.center_xyz_mm.shape == (3,) and one.latent.shape == (23,)
    assert one.crop.shape == (32, 32) and one.camera == CAM
    both = est.predict(frames, CAM)
    assert both.joints_xyz_mm.shape == (2, 16, 3) and both.crop.shape == (2, 32, 32)
    np.testing.assert_allclose(both.joints_xyz_mm[0], one.joints_xyz_mm, atol=1e-3)
    # uvd and xyz describe the same points; the joints sit around the detected centre
    np.testing.assert_allclose(uvd_to_xyz(both.joints_uvd, CAM), both.joints_xyz_mm, atol=1e-2)
    np.testing.assert_allclose(uvd_to_xyz(both.center_uvd, CAM), both.center_xyz_mm)
    assert abs(one.center_uvd[2] - 450.0) < 5.0
    # the crop is the frame's preprocessed crop, what the network saw
    np.testing.assert_array_equal(one.crop, preprocess(frames[0], CAM, est.crop).depth)
    # decode_latent gives the same joints relative to the crop centre
    rel = est.decode_latent(both.latent) + both.center_xyz_mm[:, None]
    np.testing.assert_allclose(rel, both.joints_xyz_mm, atol=1e-3)


def test_predict_crops_matches_predict_with_given_center(model_dir: Path) -> None:
    est = HandPoseEstimator.from_pretrained(model_dir)
    frame, center = _frame(160, 120), np.array([160.0, 120.0, 450.0])
    crop = preprocess(frame, CAM, est.crop, center)
    a = est.predict(frame, CAM, center_uvd=center)
    b = est.predict_crops(crop.depth[None, None], center[None], CAM).frame(0)
    for f in fields(Prediction):
        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name))
    crops = np.repeat(crop.depth[None, None], 5, axis=0)
    chunked = est.predict_crops(crops, np.repeat(center[None], 5, axis=0), CAM, batch_size=2)
    np.testing.assert_allclose(chunked.joints_xyz_mm, np.repeat(a.joints_xyz_mm[None], 5, axis=0), atol=1e-3)
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        est.predict_crops(np.zeros((1, 1, 64, 64), np.float32), center[None], CAM)


def test_predict_file_reads_camera_and_center(model_dir: Path, tmp_path: Path) -> None:
    est = HandPoseEstimator.from_pretrained(model_dir)
    frame = _frame(150, 110)
    np.save(tmp_path / "f.npy", frame)
    # a centre without depth takes the image's depth there; a custom camera equal to the preset
    pred = est.predict_file(tmp_path / "f.npy", "custom", (CAM.fx, CAM.fy, CAM.cx, CAM.cy), (150, 110, 0))
    np.testing.assert_allclose(pred.center_uvd, [150, 110, 450], atol=1e-3)
    direct = est.predict(frame, CAM, center_uvd=pred.center_uvd)
    np.testing.assert_array_equal(pred.joints_xyz_mm, direct.joints_xyz_mm)
    # a preset whose size is an exact multiple of the frame's is scaled (NYU at half resolution)
    half = est.predict_file(tmp_path / "f.npy", "nyu").camera
    assert (half.fx, half.cx, half.width_px) == (CAMERAS["nyu"].fx / 2, 159.75, 320)
    with pytest.raises(ValueError, match="Kinect v2 camera is 512x424"):
        est.predict_file(tmp_path / "f.npy", "kinect_v2")
    np.save(tmp_path / "wall.npy", np.full_like(frame, 4000.0))
    with pytest.raises(NoHandError, match=r"wall.npy: .*no hand in range"):
        est.predict_file(tmp_path / "wall.npy", "icvl")


def test_latent_tools(model_dir: Path) -> None:
    est = HandPoseEstimator.from_pretrained(model_dir)
    z = np.random.default_rng(0).normal(size=(3, 23)).astype(np.float32)
    crops = est.generate_depth(z)
    assert crops.shape == (3, 32, 32) and np.abs(crops).max() <= 1
    # this generator does not see the centre: the same drawing wherever the crop was taken
    np.testing.assert_array_equal(est.generate_depth(z, np.array([[90.0, 10.0, 400.0]] * 3)), crops)
    # smo(a, b) = f(a) - f(b): antisymmetric, additive along a chain, non-zero between different crops
    ab = est.smoothness_distance(crops[:2], crops[1:])  # (a, b) and (b, c)
    assert ab.shape == (2, 23) and (np.abs(ab).max(axis=1) > 0).all()
    np.testing.assert_allclose(est.smoothness_distance(crops[1:], crops[:2]), -ab, atol=1e-6)
    np.testing.assert_allclose(ab[0] + ab[1], est.smoothness_distance(crops[:1], crops[2:])[0], atol=1e-5)
    np.testing.assert_allclose(est.smoothness_distance(crops[:2, None], crops[1:, None]), ab, atol=1e-6)


def test_baselines_have_no_generator(tmp_path: Path) -> None:
    MODELS["deepprior"](model_config("tiny", convention="icvl")).save_pretrained(tmp_path)
    est = HandPoseEstimator.from_pretrained(tmp_path)
    assert est.predict(_frame(160, 120), CAM).latent.shape == (8 + 3,)
    with pytest.raises(TypeError, match="deepprior baseline"):
        est.generate_depth(np.zeros((1, 11), np.float32))


def test_predict_cli_prints_json(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frame = _frame(150, 120)
    np.save(tmp_path / "f.npy", frame)
    Image.fromarray(frame.round().astype(np.uint16)).save(tmp_path / "f.png")
    assert (
        cli.main(
            ["predict", "--checkpoint", str(model_dir), str(tmp_path / "f.npy"), str(tmp_path / "f.png")]
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["image"]).name for r in lines] == ["f.npy", "f.png"]
    assert np.array(lines[0]["joints_xyz"]).shape == (16, 3) and len(lines[0]["joint_names"]) == 16
    np.testing.assert_allclose(lines[0]["joints_xyz"], lines[1]["joints_xyz"], atol=1.0)
    # the printed figures are the Prediction's, under the command's documented keys
    pred = HandPoseEstimator.from_pretrained(model_dir).predict(frame, CAM)
    assert {"joints_xyz", "joints_uvd", "com_uvd", "latent"} <= set(lines[0])
    np.testing.assert_allclose(lines[0]["joints_xyz"], pred.joints_xyz_mm, atol=1e-4)
    np.testing.assert_allclose(lines[0]["com_uvd"], pred.center_uvd, atol=1e-4)


def test_a_detected_centre_is_moved_to_the_predicted_palm_and_a_given_one_kept() -> None:
    """recenter_passes=1: the second crop is centred on the first pass's palm (the root joint)."""
    torch.manual_seed(0)
    model = MODELS["crossingnet"](model_config("tiny-release", convention="icvl")).eval()
    once = HandPoseEstimator(model)
    first = once.predict(_frame(300, 200), CAM)
    model.config = dataclasses.replace(model.config, recenter_passes=1)
    refined = once.predict(_frame(300, 200), CAM)
    root = once.convention.root
    np.testing.assert_allclose(refined.center_uvd, first.joints_uvd[root])
    assert not np.allclose(refined.center_uvd, first.center_uvd)
    given = np.array([305.0, 195.0, 450.0])
    np.testing.assert_allclose(once.predict(_frame(300, 200), CAM, given).center_uvd, given)
