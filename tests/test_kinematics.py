"""Forward kinematics, landmarks of every convention and capsules of the kinematic hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossingnets.camera import CAMERAS
from crossingnets.hand.conventions import CONVENTIONS, ICVL, MSRA, NYU, get_convention
from crossingnets.hand.kinematics import (
    DIGITS,
    LANDMARKS,
    HandPose,
    default_shape,
    flat_pose,
    forearm_direction,
    forward_kinematics,
    hand_capsules,
    landmarks_to_joints,
)
from crossingnets.hand.sampler import SamplerConfig, sample_hands


def _at(landmarks: np.ndarray, name: str) -> np.ndarray:
    return landmarks[:, LANDMARKS.index(name)]


def test_flat_hand_faces_the_camera_fingers_up():
    land = forward_kinematics(flat_pose(1, distance_mm=400.0), default_shape(1))
    assert land.shape == (1, len(LANDMARKS), 3) and land.dtype == np.float32
    np.testing.assert_allclose(_at(land, "palm")[0], [0.0, 0.0, 400.0], atol=1e-4)
    for d in DIGITS[1:]:
        # fingers point up the image (-y) and lie in the palm plane
        assert _at(land, f"{d}_tip")[0, 1] < _at(land, f"{d}_pip")[0, 1] < _at(land, f"{d}_mcp")[0, 1]
        assert abs(_at(land, f"{d}_tip")[0, 2] - 400.0) < 1e-3
    # right hand, palm to the camera: thumb on the image right (+x), pinky on the left
    assert _at(land, "thumb_tip")[0, 0] > _at(land, "index_tip")[0, 0] > _at(land, "pinky_tip")[0, 0]
    assert _at(land, "wrist")[0, 1] > 0  # the wrist is below the palm


def test_flexion_curls_fingers_towards_the_palm_side():
    pose, shape = flat_pose(1), default_shape(1)
    angles = pose.angles_rad.copy()
    angles[0, 1:, [0, 3, 4]] = np.deg2rad(60.0)
    land = forward_kinematics(pose._replace(angles_rad=angles), shape)
    # the palm faces the camera, so palmar is towards the camera: smaller z
    assert (land[0, [LANDMARKS.index(f"{d}_tip") for d in DIGITS[1:]], 2] < 500.0 - 20.0).all()


def test_numpy_and_torch_agree_and_torch_is_differentiable(rng):
    pose, shape = sample_hands(rng, 4, CAMERAS["icvl"])
    land_np = forward_kinematics(pose, shape)
    pose_t = HandPose(*(torch.tensor(a, dtype=torch.float64) for a in pose))
    pose_t.angles_rad.requires_grad_(True)
    shape_t = type(shape)(*(torch.tensor(a, dtype=torch.float64) for a in shape))
    land_t = forward_kinematics(pose_t, shape_t)
    np.testing.assert_allclose(land_t.detach().numpy(), land_np, atol=1e-3)
    land_t.sum().backward()
    assert torch.isfinite(pose_t.angles_rad.grad).all() and pose_t.angles_rad.grad.abs().sum() > 0


def test_bone_lengths_preserved_by_rigid_motion(rng):
    pose, shape = sample_hands(rng, 8, CAMERAS["nyu"])
    moved = forward_kinematics(pose, shape)
    local = forward_kinematics(
        pose._replace(rotation=np.broadcast_to(np.eye(3, dtype=np.float32), (8, 3, 3)).copy()), shape
    )
    d = lambda x: np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(moved), d(local), atol=1e-2)


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_convention_joints_are_finite_and_in_order(name, rng):
    conv = get_convention(name)
    pose, shape = sample_hands(rng, 16, CAMERAS["nyu"])
    joints = landmarks_to_joints(forward_kinematics(pose, shape), conv)
    assert joints.shape == (16, conv.num_joints, 3) and np.isfinite(joints).all()
    # every tip is farther from the wrist-side root than that finger's other joints (open hand)
    open_joints = landmarks_to_joints(forward_kinematics(flat_pose(1), default_shape(1)), conv)[0]
    root = open_joints[conv.root]
    for i, jn in enumerate(conv.joint_names):
        if jn.endswith("_tip"):
            same = [k for k, f in enumerate(conv.fingers) if f == conv.fingers[i] and k != i]
            assert all(
                np.linalg.norm(open_joints[i] - root) > np.linalg.norm(open_joints[k] - root) for k in same
            )


def test_default_hand_matches_nyu_label_medians():
    """Bone lengths of the scale-1 hand against the medians of the 8,252 NYU test labels
    (shared/data/README.md): PIP -> tip, thumb tip -> root2 -> root1, wrist points."""
    j = landmarks_to_joints(forward_kinematics(flat_pose(1), default_shape(1)), NYU)[0]
    ix = {n: i for i, n in enumerate(NYU.joint_names)}
    dist = lambda a, b: np.linalg.norm(j[ix[a]] - j[ix[b]])  # noqa: E731
    for finger, median in (("pinky", 34.7), ("ring", 42.8), ("middle", 47.3), ("index", 43.9)):
        assert dist(f"{finger}_tip", f"{finger}_root") == pytest.approx(median, abs=3.0)
        assert 55.0 < dist(f"{finger}_root", "palm") < 72.0  # README: 61-68 mm
    assert dist("wrist1", "wrist2") == pytest.approx(29.3, abs=1.0)
    assert dist("wrist1", "palm") == pytest.approx(67.3, abs=1.0)
    assert dist("thumb_tip", "thumb_root2") == pytest.approx(19.5, abs=4.0)
    assert dist("thumb_root2", "thumb_root1") == pytest.approx(38.6, abs=6.0)


def test_msra_and_icvl_share_landmarks_where_they_should():
    land = forward_kinematics(flat_pose(1), default_shape(1))
    icvl, msra = landmarks_to_joints(land, ICVL)[0], landmarks_to_joints(land, MSRA)[0]
    np.testing.assert_array_equal(
        icvl[ICVL.joint_names.index("index_root")], msra[MSRA.joint_names.index("index_pip")]
    )
    np.testing.assert_array_equal(
        icvl[ICVL.joint_names.index("thumb_root")], msra[MSRA.joint_names.index("thumb_pip")]
    )


def test_capsules_cover_the_hand_and_scale_with_thickness(rng):
    pose, shape = sample_hands(rng, 3, CAMERAS["nyu"], SamplerConfig())
    caps = hand_capsules(pose, shape)
    k = caps.radius_mm.shape[1]
    assert caps.start_mm.shape == caps.end_mm.shape == (3, k, 3) and caps.radius_mm.dtype == np.float32
    assert (caps.radius_mm > 0).all()
    # every landmark of the hand is inside (or on) some capsule
    land = forward_kinematics(pose, shape)
    ab = caps.end_mm[:, None] - caps.start_mm[:, None]  # (B, 1, K, 3)
    ap = land[:, :, None] - caps.start_mm[:, None]  # (B, L, K, 3)
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    dist = np.linalg.norm(ap - t[..., None] * ab, axis=-1)
    assert (dist.min(axis=2) <= caps.radius_mm[:, None].max(axis=2) + 1e-3).all()
    assert (dist <= caps.radius_mm[:, None] + 1e-3).any(axis=2).all()
    thick = hand_capsules(pose, shape._replace(thickness=shape.thickness * 1.2))
    np.testing.assert_allclose(thick.radius_mm, caps.radius_mm * 1.2, rtol=1e-5)
    # a forearm stub 100-150 mm long with a 25-30 mm half-thickness (two side-by-side capsules)
    arm_len = np.linalg.norm(caps.end_mm[:, -1] - caps.start_mm[:, -1], axis=-1) / shape.scale
    assert ((arm_len > 100) & (arm_len < 150)).all()


def test_forearm_continues_the_hand_at_zero_wrist_angles():
    pose = flat_pose(1)
    np.testing.assert_allclose(forearm_direction(pose)[0], [0.0, 1.0, 0.0], atol=1e-6)
    bent = pose._replace(wrist_rad=np.array([[0.5, 0.0]], np.float32))
    # a flexed wrist folds hand and forearm on the palm side: towards a camera the palm faces
    assert forearm_direction(bent)[0, 2] == pytest.approx(-np.sin(0.5), abs=1e-6)
    deviated = pose._replace(wrist_rad=np.array([[0.0, 0.5]], np.float32))
    assert forearm_direction(deviated)[0, 0] == pytest.approx(np.sin(0.5), abs=1e-6)  # radial: +x
