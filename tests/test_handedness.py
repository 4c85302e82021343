"""Left hands: mirrored in, predicted as a right hand, mirrored back out.

The check of the issue: mirror a right-hand frame; predicting it with handedness="left" must give
the mirror image of the right-hand prediction (joints, centre and crop), through every entry:
`predict`, `predict_file` with a given centre, and the CLI.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import fields

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from crossingnets import cli
from crossingnets.camera import Intrinsics
from crossingnets.data.depth_units import DepthUnitError
from crossingnets.inference import HandPoseEstimator, Prediction
from crossingnets.models import MODELS, model_config

# An off-centre principal point: the mirror image's camera differs from the frame's.
CAM = Intrinsics(250.0, 250.0, 150.0, 115.0, 320, 240)


def _right_hand() -> np.ndarray:
    """A 320x240 frame in mm: a palm disc with a 'thumb' bar to one side, tilted in depth."""
    yy, xx = np.mgrid[: CAM.height_px, : CAM.width_px]
    palm = (xx - 140) ** 2 + (yy - 120) ** 2 < 22**2
    thumb = (xx > 150) & (xx < 185) & (yy > 95) & (yy < 104)
    return np.where(palm | thumb, 460.0 + 0.2 * (xx - 140) + 0.1 * (yy - 120), 0.0).astype(np.float32)


def _mirror(pred: Prediction, camera: Intrinsics) -> Prediction:
    """The expected mirror image, written out by hand (not with Prediction.mirrored)."""
    w = camera.width_px - 1
    return dataclasses.replace(
        pred,
        joints_xyz_mm=pred.joints_xyz_mm * [-1, 1, 1],
        joints_uvd=np.stack([w - pred.joints_uvd[:, 0], pred.joints_uvd[:, 1], pred.joints_uvd[:, 2]], -1),
        crop=pred.crop[:, ::-1],
        center_uvd=np.array([w - pred.center_uvd[0], *pred.center_uvd[1:]]),
        center_xyz_mm=pred.center_xyz_mm * [-1, 1, 1],
        camera=camera,
    )


def _assert_same(a: Prediction, b: Prediction) -> None:
    assert a.camera == b.camera
    for f in fields(Prediction):
        if f.name != "camera":
            np.testing.assert_allclose(getattr(a, f.name), getattr(b, f.name), atol=2e-3, err_msg=f.name)


@pytest.fixture(scope="module")
def estimator() -> HandPoseEstimator:
    """A tiny release-style model that re-centres once on its palm (so the mirror holds through it)."""
    torch.manual_seed(0)
    config = dataclasses.replace(model_config("tiny-release", convention="icvl"), recenter_passes=1)
    return HandPoseEstimator(MODELS["crossingnet"](config).eval())


def test_left_on_the_mirrored_frame_is_the_mirror_of_right(estimator):
    frame = _right_hand()
    right = estimator.predict(frame, CAM)
    left = estimator.predict(frame[:, ::-1], CAM.mirrored(), handedness="left")
    _assert_same(left, _mirror(right, CAM.mirrored()))
    np.testing.assert_allclose(left.latent, right.latent, atol=1e-5)  # the network saw the same crop
    # and handedness matters: the same frame read as a left hand is another estimate
    assert not np.allclose(
        estimator.predict(frame, CAM, handedness="left").joints_xyz_mm, right.joints_xyz_mm
    )


def test_a_batch_and_a_given_centre_are_mirrored_too(estimator):
    frames = np.stack([_right_hand(), np.roll(_right_hand(), 12, axis=1)])
    centers = np.array([[141.0, 118.0, 462.0], [150.0, 121.0, 463.0]])
    right = estimator.predict(frames, CAM, centers)
    mirrored_centers = centers * [-1, 1, 1] + [CAM.width_px - 1, 0, 0]
    left = estimator.predict(frames[:, :, ::-1], CAM.mirrored(), mirrored_centers, handedness="left")
    for i in range(2):
        _assert_same(left.frame(i), _mirror(right.frame(i), CAM.mirrored()))
    np.testing.assert_allclose(left.center_uvd, mirrored_centers)  # a given centre is kept


def test_prediction_mirrored_twice_is_itself(estimator):
    pred = estimator.predict(_right_hand(), CAM)
    _assert_same(pred.mirrored(CAM.mirrored()).mirrored(CAM), pred)


def test_file_and_cli_take_handedness(estimator, tmp_path, capsys):
    folder = tmp_path / "model"
    estimator.model.save_pretrained(folder)
    np.save(tmp_path / "right.npy", _right_hand())
    np.save(tmp_path / "left.npy", np.ascontiguousarray(_right_hand()[:, ::-1]))
    mirrored = CAM.mirrored()
    custom = [str(v) for v in (mirrored.fx, mirrored.fy, mirrored.cx, mirrored.cy)]
    est = HandPoseEstimator.from_pretrained(folder)
    right = est.predict_file(tmp_path / "right.npy", CAM, center=(141, 118, 0))
    left = est.predict_file(tmp_path / "left.npy", mirrored, center=(319 - 141, 118, 0), handedness="left")
    _assert_same(left, _mirror(right, mirrored))
    argv = ["predict", "--checkpoint", str(folder), str(tmp_path / "left.npy"), "--intrinsics", *custom]
    assert cli.main([*argv, "--handedness", "left"]) == 0
    record = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(
        record["joints_xyz"], _mirror(est.predict(_right_hand(), CAM), mirrored).joints_xyz_mm, atol=2e-3
    )


def test_bad_handedness(estimator):
    with pytest.raises(ValueError, match="handedness must be one of"):
        estimator.predict(_right_hand(), CAM, handedness="both")
    with pytest.raises(DepthUnitError):  # the unit check comes first, for either hand
        estimator.predict(_right_hand() * 10, CAM, handedness="left")


def test_left_hand_mesh_is_the_mirror_of_the_right_one(tmp_path):
    """The GLB download of a left-hand estimate: a mirrored kinematic hand, where the joints are."""
    from crossingnets.camera import CAMERAS
    from crossingnets.explorer.upload import write_pose_mesh
    from crossingnets.hand.conventions import get_convention
    from crossingnets.hand.kinematics import forward_kinematics, landmarks_to_joints
    from crossingnets.hand.sampler import sample_hands

    nyu = get_convention("nyu")
    pose, shape = sample_hands(np.random.default_rng(3), 1, CAMERAS["nyu"])
    joints = np.asarray(landmarks_to_joints(forward_kinematics(pose, shape), nyu))[0] + [150.0, 0, 0]
    right = trimesh.load(write_pose_mesh(joints, nyu, tmp_path / "r.glb", 5), force="mesh")
    left = trimesh.load(
        write_pose_mesh(joints * [-1, 1, 1], nyu, tmp_path / "l.glb", 5, "left"), force="mesh"
    )
    mirrored = left.vertices * [-1, 1, 1]
    assert cKDTree(right.vertices).query(mirrored)[0].max() < 1e-3  # the same surface, mirrored
    assert np.linalg.norm(left.vertices.mean(axis=0) - (joints * [-1, 1, 1]).mean(axis=0)) < 60
