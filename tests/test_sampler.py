"""The pose sampler: limits, determinism, placement, orientation, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from crossingnets.camera import CAMERAS
from crossingnets.hand.conventions import CONVENTIONS
from crossingnets.hand.kinematics import (
    JOINT_LIMITS_RAD,
    forearm_direction,
    forward_kinematics,
    landmarks_to_joints,
)
from crossingnets.hand.sampler import GESTURES, SamplerConfig, joints_in_frame, sample_hands


def test_same_seed_gives_bitwise_equal_hands():
    a = sample_hands(np.random.default_rng(7), 64, CAMERAS["nyu"])
    b = sample_hands(np.random.default_rng(7), 64, CAMERAS["nyu"])
    c = sample_hands(np.random.default_rng(8), 64, CAMERAS["nyu"])
    for x, y in zip([*a[0], *a[1]], [*b[0], *b[1]], strict=True):
        assert x.dtype == np.float32 and x.tobytes() == y.tobytes()
    assert not np.array_equal(a[0].angles_rad, c[0].angles_rad)


def test_angles_respect_joint_limits_and_dip_follows_pip(rng):
    pose, _ = sample_hands(rng, 2000, CAMERAS["icvl"])
    lo, hi = JOINT_LIMITS_RAD[..., 0], JOINT_LIMITS_RAD[..., 1]
    assert (pose.angles_rad >= lo - 1e-6).all() and (pose.angles_rad <= hi + 1e-6).all()
    pip, dip = pose.angles_rad[:, 1:, 3].ravel(), pose.angles_rad[:, 1:, 4].ravel()
    assert np.corrcoef(pip, dip)[0, 1] > 0.9
    # the poses span the range: some fists, some open hands
    curl = pose.angles_rad[:, 1:, 3].mean(axis=1)
    assert (curl > np.deg2rad(80)).mean() > 0.05 and (curl < np.deg2rad(15)).mean() > 0.1


@pytest.mark.parametrize("camera", sorted(CAMERAS))
def test_hands_lie_inside_the_frame_at_the_right_distance(camera, rng):
    cam = CAMERAS[camera]
    cfg = SamplerConfig()
    pose, shape = sample_hands(rng, 500, cam, cfg)
    landmarks = forward_kinematics(pose, shape)
    assert joints_in_frame(landmarks, cam).all()
    for conv in CONVENTIONS.values():
        assert joints_in_frame(landmarks_to_joints(landmarks, conv), cam).all()
    depth = pose.translation_mm[:, 2]
    assert depth.min() >= cfg.distance_mm[0] and depth.max() <= cfg.distance_mm[1]
    assert depth.max() - depth.min() > 0.8 * (cfg.distance_mm[1] - cfg.distance_mm[0])


def test_palm_faces_the_camera_within_the_tilt_and_forearm_points_away(rng):
    cfg = SamplerConfig(max_palm_tilt_deg=40.0)
    pose, _ = sample_hands(rng, 500, CAMERAS["nyu"], cfg)
    palm_normal = pose.rotation[:, :, 2]  # the hand frame's z (palmar) in the camera frame
    tilt = np.degrees(np.arccos(np.clip(-palm_normal[:, 2], -1, 1)))
    assert tilt.max() <= 40.0 + 1e-3 and tilt.max() > 30.0
    np.testing.assert_allclose(
        pose.rotation @ pose.rotation.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (500, 3, 3)), atol=1e-5
    )
    limit = -np.sin(np.deg2rad(cfg.max_forearm_towards_camera_deg))
    assert (forearm_direction(pose)[:, 2] >= limit - 1e-5).all()


def test_subject_shapes_vary_within_range(rng):
    _, shape = sample_hands(rng, 1000, CAMERAS["nyu"])
    assert shape.scale.min() >= 0.85 and shape.scale.max() <= 1.15 and shape.scale.std() > 0.05
    assert (shape.links_mm > 0).all() and shape.links_mm.std(axis=0).min() > 0.3
    np.testing.assert_array_equal(shape.palm_mm[:, 3], 0.0)  # the palm point is the origin


def test_every_gesture_can_be_drawn_alone(rng):
    for g in GESTURES:
        pose, _ = sample_hands(rng, 4, CAMERAS["icvl"], SamplerConfig(gesture_prob=((g, 1.0),)))
        assert np.isfinite(pose.angles_rad).all()
    fists, _ = sample_hands(rng, 50, CAMERAS["icvl"], SamplerConfig(gesture_prob=(("fist", 1.0),)))
    opens, _ = sample_hands(rng, 50, CAMERAS["icvl"], SamplerConfig(gesture_prob=(("open", 1.0),)))
    assert fists.angles_rad[:, 1:, 3].mean() > opens.angles_rad[:, 1:, 3].mean() + np.deg2rad(60)


def test_bad_config_and_n_raise():
    with pytest.raises(ValueError, match="unknown gestures"):
        SamplerConfig(gesture_prob=(("wave", 1.0),))
    with pytest.raises(ValueError, match="distance_mm"):
        SamplerConfig(distance_mm=(900.0, 300.0))
    with pytest.raises(ValueError, match="n must be positive"):
        sample_hands(np.random.default_rng(0), 0, CAMERAS["nyu"])
