"""Named sliders: the pose attributes measured on kinematic hands whose angles are known, the
knob that moves one of them on the bundled model, and the global anchors it is compared with."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from crossingnets.camera import CAMERAS
from crossingnets.explorer.attributes import ATTRIBUTE_NAMES, hand_attributes, orientation_deg, palm_frames
from crossingnets.explorer.axes import LatentAxes
from crossingnets.explorer.directions import (
    GLOBAL_METHODS,
    MEASURES,
    attribute_path,
    difference,
    edit_attribute,
    fit_global_directions,
    global_move,
    measure,
    named_sliders,
    regression_targets,
    turn,
)
from crossingnets.hand.conventions import get_convention
from crossingnets.hand.kinematics import (
    PALM_TO_CAMERA,
    default_shape,
    flat_pose,
    forward_kinematics,
    landmarks_to_joints,
)
from crossingnets.hand.sampler import sample_hands
from crossingnets.inference import HandPoseEstimator
from crossingnets_app.launch import bundled_checkpoint

NYU = get_convention("nyu")
A = {name: k for k, name in enumerate(ATTRIBUTE_NAMES)}


def joints_of(pose, shape=None):
    shape = default_shape(len(pose.angles_rad)) if shape is None else shape
    return landmarks_to_joints(forward_kinematics(pose, shape), NYU)


@pytest.fixture(scope="module")
def estimator() -> HandPoseEstimator:
    return HandPoseEstimator.from_pretrained(bundled_checkpoint())


@pytest.fixture(scope="module")
def axes(estimator) -> LatentAxes:
    return LatentAxes.from_stats(estimator.latent_stats)


# -- attributes of kinematic hands -------------------------------------------------------------------


def test_palm_frame_is_the_hands_rotation():
    pose, shape = sample_hands(np.random.default_rng(0), 64, CAMERAS["nyu"])
    frames = palm_frames(joints_of(pose, shape), NYU)
    # the palm points carry 2 mm of jitter and 5 % proportion noise; the wrist joints are ~29 mm
    # apart, so the frame's radial axis wobbles by a few degrees
    angle = np.degrees(Rotation.from_matrix(frames.transpose(0, 2, 1) @ pose.rotation).magnitude())
    assert np.median(angle) < 6.0 and angle.max() < 15.0
    exact = palm_frames(joints_of(pose), NYU)  # the default shape has no jitter: exact
    np.testing.assert_allclose(exact, pose.rotation, atol=1e-5)


@pytest.mark.parametrize(
    "yaw, pitch, roll", [(0, 0, 0), (30, 0, 0), (0, -40, 0), (0, 0, 150), (-50, 25, -120)]
)
def test_orientation_recovers_yaw_pitch_roll(yaw, pitch, roll):
    r = Rotation.from_euler("YXZ", [yaw, pitch, roll], degrees=True).as_matrix()  # Ry Rx Rz
    np.testing.assert_allclose(orientation_deg((r @ PALM_TO_CAMERA)[None]), [[yaw, pitch, roll]], atol=1e-9)


def test_orientation_signs_read_as_their_labels():
    pose = flat_pose(1)
    tip, palm = NYU.joint_names.index("middle_tip"), NYU.root
    for rotvec, name, sign_of in [
        ([0, 0, 30], "roll", lambda j: j[tip, 0] - j[palm, 0]),  # clockwise: fingers lean to the image right
        ([30, 0, 0], "pitch", lambda j: j[palm, 2] - j[tip, 2]),  # fingers toward the camera
        ([0, 30, 0], "yaw", lambda j: -palm_frames(j[None], NYU)[0][0, 2]),  # palm normal toward image left
    ]:
        r = Rotation.from_rotvec(np.radians(rotvec)).as_matrix()
        joints = joints_of(pose._replace(rotation=(r @ PALM_TO_CAMERA)[None].astype(np.float32)))
        attrs = hand_attributes(joints, NYU)[0]
        assert attrs[A[name]] == pytest.approx(30.0, abs=1e-3) and sign_of(joints[0]) > 0


def test_curl_spread_and_opposition_follow_the_joint_angles():
    n = 5
    angles = np.zeros((n, 5, 5), np.float32)
    curl = np.linspace(0.0, 1.0, n)
    angles[:, 2, 0] = np.radians(85 * curl)  # middle MCP, PIP, DIP
    angles[:, 2, 3] = np.radians(100 * curl)
    angles[:, 2, 4] = np.radians(67 * curl)
    angles[:, 1, 1] = np.radians(np.linspace(0, 20, n))  # index abducted toward the thumb
    angles[:, 0, 0] = np.radians(np.linspace(0, 45, n))  # thumb CMC flexion: across the palm
    angles[:, 0, 4] = np.radians(np.linspace(0, 60, n))  # thumb IP
    pose = flat_pose(n)._replace(angles_rad=angles)
    attrs = hand_attributes(joints_of(pose), NYU)
    assert attrs[0, A["middle curl"]] == pytest.approx(0.0, abs=1e-3)
    assert np.all(np.diff(attrs[:, A["middle curl"]]) > 30) and attrs[-1, A["middle curl"]] > 200  # a fist
    np.testing.assert_allclose(attrs[:, A["index curl"]], 0.0, atol=1e-3)  # the others stay straight
    assert np.all(np.diff(attrs[:, A["spread"]]) > 0)
    assert np.all(np.diff(attrs[:, A["thumb opposition"]]) < 0)  # the tip nears the little finger
    np.testing.assert_allclose(attrs[:, A["thumb curl"]], np.linspace(0, 60, n), atol=1e-3)
    np.testing.assert_allclose(attrs[:, A["yaw"] :], 0.0, atol=1e-3)


def test_attributes_need_nyu_joints():
    with pytest.raises(ValueError, match="defined on NYU's joints"):
        hand_attributes(np.zeros((1, 16, 3)), get_convention("icvl"))
    with pytest.raises(ValueError, match=r"\(N, 14, 3\)"):
        hand_attributes(np.zeros((14, 3)), NYU)


# -- the knob, on the bundled model ------------------------------------------------------------------


def test_named_slider_moves_its_attribute_and_holds_the_rest(estimator, axes):
    sliders = named_sliders(estimator, axes)
    middle = (sliders.low + sliders.high) / 2
    for z in axes.sample(np.random.default_rng(4), 3):
        before = measure(estimator, z)[0]
        for name in ATTRIBUTE_NAMES:
            k = MEASURES.index(name)
            delta = 10.0 if before[k] < middle[k] else -10.0  # toward the middle of the range
            edit = edit_attribute(estimator, axes, z, name, before[k] + delta)
            change = difference(edit.measured, before)
            assert change[k] == pytest.approx(delta, abs=0.5), name
            assert np.abs(np.delete(change, k)).max() < 0.5, (name, change.round(2))


@pytest.fixture(scope="module")
def hands(estimator) -> np.ndarray:
    """(6, L) latents of natural hands: the sampler's poses, palm at the crop centre, encoded."""
    pose, shape = sample_hands(np.random.default_rng(0), 6, CAMERAS["nyu"])
    joints = joints_of(pose, shape).astype(np.float64)
    return estimator.encode_joints(joints - joints[:, NYU.root, None])


def test_encode_joints_inverts_the_decoder(estimator, hands):
    joints = estimator.decode_latent(hands)
    np.testing.assert_allclose(estimator.decode_latent(estimator.encode_joints(joints)), joints, atol=3.0)


def test_a_long_move_and_walks_along_sliders(estimator, axes, hands):
    z = hands[0]
    start = measure(estimator, z)[0]
    k = MEASURES.index("middle curl")
    edit = edit_attribute(estimator, axes, z, "middle curl", start[k] + 90.0)  # several re-linearised steps
    assert difference(edit.measured, start)[k] == pytest.approx(90.0, abs=1.0)
    assert np.abs(np.delete(difference(edit.measured, start), k)).max() < 1.0
    # the whole circle of roll and a yaw half turn: the hand turned, its articulation and place held
    for name, values in [("roll", np.linspace(-180, 180, 9)), ("yaw", np.linspace(-90, 90, 7))]:
        for z in hands[:3]:
            start = measure(estimator, z)[0]
            path = measure(estimator, attribute_path(estimator, axes, z, name, values))
            k = MEASURES.index(name)
            np.testing.assert_allclose((path[:, k] - values + 180) % 360 - 180, 0.0, atol=0.5)
            assert np.abs(np.delete(difference(path, start), k, axis=1)).max() < 1.0, name
    with pytest.raises(ValueError, match="unknown attribute 'hand x'"):
        edit_attribute(estimator, axes, z, "hand x", 0.0)


def test_turn_changes_one_angle():
    ypr = np.array([20.0, -30.0, 100.0])
    m = Rotation.from_euler("YXZ", ypr, degrees=True).as_matrix()
    for k, name in enumerate(("yaw", "pitch", "roll")):
        turned = orientation_deg((turn(ypr, name, 15.0) @ m @ PALM_TO_CAMERA)[None])[0]
        np.testing.assert_allclose(turned, ypr + 15.0 * np.eye(3)[k], atol=1e-9)


def test_slider_ranges_cover_the_training_poses(estimator, axes):
    sliders = named_sliders(estimator, axes)
    assert sliders.names == ATTRIBUTE_NAMES and sliders.labels[A["spread"]] == "spread (mm)"
    others = measure(estimator, axes.sample(np.random.default_rng(9), 1000))[:, : len(ATTRIBUTE_NAMES)]
    inside = (sliders.low <= others) & (others <= sliders.high)
    assert np.all(inside.mean(axis=0) > 0.9)
    assert sliders.high[A["index curl"]] - sliders.low[A["index curl"]] > 150  # open hand to fist
    assert (sliders.low[A["roll"]], sliders.high[A["roll"]]) == (-180.0, 180.0)


# -- the global anchors ------------------------------------------------------------------------------


def test_global_directions_on_a_linear_latent():
    """Attributes linear in the latent: each method moves the fitted attribute as asked; only the
    conditional one leaves every other attribute's linear prediction where it was."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal((4000, 20))
    mixing = rng.standard_normal((20, len(MEASURES))) * 5
    measures = u @ mixing
    measures[:, MEASURES.index("roll")] = 0.0  # roll at 0 (cos 1, sin 0): the linear part is its sin
    measures[:, MEASURES.index("roll")] += np.degrees(0.1 * u[:, 0])
    w = np.linalg.lstsq(np.c_[u, np.ones(len(u))], regression_targets(measures), rcond=None)[0][:-1].T
    directions = fit_global_directions(u, measures, alpha=1e-6)
    assert set(directions) == set(GLOBAL_METHODS)
    k = MEASURES.index("spread")
    for method, per_target in directions.items():
        du = global_move(per_target, np.zeros(len(MEASURES)), "spread", 4.0)
        predicted = w @ du  # the linear change of every regression target
        assert predicted[k] == pytest.approx(4.0, rel=0.05 if method == "GANSpace" else 1e-3), method
        others = np.abs(np.delete(predicted, k)).max()
        assert (others < 1e-3) == (method == "InterFaceGAN conditional"), method
    ganspace = directions["GANSpace"][:, k]
    assert np.count_nonzero(ganspace) == 1 and np.argmax(np.abs(ganspace)) == np.argmax(np.abs(mixing[:, k]))
    # a circular attribute turns its (cos, sin): at roll 0 a positive step raises the sine
    du = global_move(directions["InterFaceGAN conditional"], np.zeros(len(MEASURES)), "roll", 5.0)
    sin_column = 1 + MEASURES.index("roll")
    assert (w @ du)[sin_column] == pytest.approx(np.radians(5.0), rel=1e-3)
