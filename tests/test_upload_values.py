"""The upload tab's small pieces by value: camera menu, the frame preview's grey levels and marks,
the record's latency, the 3D view's cube, the label notes (gaps mutation testing found)."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from crossingnets.camera import get_camera
from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer import upload as U
from crossingnets.hand.conventions import NYU
from crossingnets.inference import Prediction

CAM = get_camera("nyu")


def test_camera_menu_labels_and_specs() -> None:
    assert U.camera_choice_label(U.CUSTOM) == "custom (fx, fy, cx, cy below)"
    assert U.camera_choice_label(U.CAMERA_FILE) == "camera file (below)"
    assert U.camera_choice_label("nyu").startswith("NYU")
    assert U.camera_spec("sr305", "ignored.yaml") == "sr305"
    assert U.camera_spec(U.CAMERA_FILE, "cam.yaml") == "cam.yaml"
    with pytest.raises(ValueError, match="upload a camera file"):
        U.camera_spec(U.CAMERA_FILE, None)


def test_depth_image_maps_near_bright_far_dark_missing_black_in_place() -> None:
    raw = np.zeros((4, 6))
    raw[0, 1] = 500.0  # near
    raw[2, 4] = 900.0  # far
    raw[3, 5] = 700.0  # halfway
    grey = np.asarray(U.depth_image(raw))[..., 0]
    assert grey[0, 1] > 240 and 40 <= grey[2, 4] < 50 and grey[3, 0] == 0
    assert 130 < grey[3, 5] < 160  # 40 + 215 * ~0.5
    assert (grey > 0).sum() == 3  # the three valid pixels, where they are


def test_a_marked_centre_frames_its_cube_and_crosses_its_centre() -> None:
    image = Image.new("RGB", (CAM.width_px, CAM.height_px))
    center = np.array([320.0, 240.0, 600.0])
    U.mark_center(image, center, CAM, 300.0, (255, 0, 0))
    px = np.asarray(image)[..., 0] > 0
    hu = 0.5 * 300.0 * CAM.fx / 600.0  # the cube's half side at 600 mm
    right, left = int(round(320 + hu)), int(round(320 - hu))
    assert px[240, right] and px[240, left] and px[240, 320]  # the square's sides, the cross
    assert not px[240, right + 4] and not px[240, left - 4] and not px[240, 320 + 20]
    top = int(round(240 - 0.5 * 300.0 * CAM.fy / 600.0))
    assert px[top, 320] and not px[top - 4, 320]


def _prediction() -> Prediction:
    joints = np.zeros((NYU.num_joints, 3), np.float32) + [10.0, -20.0, 600.0]
    return Prediction(
        joints_xyz_mm=joints,
        joints_uvd=joints,
        crop=np.ones((64, 64), np.float32),
        center_uvd=np.array([320.0, 240.0, 600.0]),
        center_xyz_mm=np.array([0.0, 0.0, 600.0]),
        latent=np.zeros(35, np.float32),
        camera=CAM,
    )


def test_the_record_reports_milliseconds_and_the_view_the_cube() -> None:
    record = U.pose_record(U.PoseResult(_prediction(), np.ones((64, 64)), 0.0123), NYU)
    assert record["latency_ms"] == 12.3
    figure = U.pose_figure(_prediction(), NYU, CropConfig(cube_mm=300.0, crop_px=64))
    ranges = [figure["layout"]["scene"][f"{a}axis"]["range"] for a in "xyz"]
    assert all(hi - lo == 300.0 for lo, hi in ranges)  # the crop cube, centred on the crop centre


def test_label_notes_say_why_there_is_no_error() -> None:
    ex = SimpleNamespace(labels_of=lambda path: None, convention=NYU)
    assert U.labelled_errors(ex, "x.png", _prediction()) == (
        None,
        "no labels for this frame (the examples have theirs): no error per joint",
    )
    ex.labels_of = lambda path: SimpleNamespace(joints_xyz_mm={}, camera="nyu")
    errors, note = U.labelled_errors(ex, "x.png", _prediction())
    assert errors is None and note == "the labels of this frame have no NYU joints: no error per joint"
    truth = np.zeros((NYU.num_joints, 3)) + [13.0, -16.0, 600.0]  # 5 mm from every estimated joint
    ex.labels_of = lambda path: SimpleNamespace(joints_xyz_mm={"nyu": truth}, camera="nyu")
    errors, note = U.labelled_errors(ex, "x.png", _prediction())
    np.testing.assert_allclose(errors, 5.0, rtol=1e-6)
    assert "mean joint error **5.0 mm**" in note


def test_estimate_pose_times_itself_and_mirrors_a_left_hands_drawing() -> None:
    """The drawing is made around the centre of the crop the network saw: a left hand's crop is
    the mirror image's, whose centre has the opposite x."""
    generated = np.linspace(-1.0, 0.5, 64 * 64, dtype=np.float32).reshape(1, 64, 64)  # (B, S, S)
    centers = []
    prediction = replace(_prediction(), center_xyz_mm=np.array([40.0, -30.0, 600.0]))

    def generate_depth(latent, center_xyz_mm):
        centers.append(np.asarray(center_xyz_mm))
        return generated

    estimator = SimpleNamespace(
        predict_file=lambda *args, **kwargs: prediction, generate_depth=generate_depth
    )
    right = U.estimate_pose(estimator, "x.png", "nyu")
    left = U.estimate_pose(estimator, "x.png", "nyu", handedness="left")
    np.testing.assert_array_equal(centers[0], [[40.0, -30.0, 600.0]])
    np.testing.assert_array_equal(centers[1], [[-40.0, -30.0, 600.0]])
    assert 0.0 < right.seconds < 10.0  # seconds of this call, not of the clock
    np.testing.assert_array_equal(right.generated, U.generated_to_crop(generated[0]))  # as drawn
    np.testing.assert_array_equal(left.generated, right.generated[:, ::-1])
    assert right.generated.shape == (64, 64) and not np.array_equal(left.generated, right.generated)


def test_same_camera_within_a_micro_pixel() -> None:
    near = replace(CAM, fx=CAM.fx + 1e-7)
    assert U.same_camera(CAM, CAM) and U.same_camera(CAM, near)
    assert not U.same_camera(CAM, replace(CAM, fx=CAM.fx + 1e-5))
    assert not U.same_camera(CAM, replace(CAM, cy=CAM.cy + 1.0))
    assert not U.same_camera(CAM, replace(CAM, width_px=CAM.width_px * 2))


def test_the_record_rounds_to_thousandths() -> None:
    p = _prediction()
    p = Prediction(**{**p.__dict__, "center_uvd": np.array([320.12345, 240.98765, 600.00049])})
    p.joints_uvd[0] = [1.23456, 2.34567, 3.45678]
    record = U.pose_record(U.PoseResult(p, np.ones((64, 64)), 0.5), NYU)
    assert record["com_uvd"] == [320.123, 240.988, 600.0]
    assert record["joints"][0]["uvd"] == [1.235, 2.346, 3.457]
    assert record["latency_ms"] == 500.0


def test_a_marked_centres_cross_has_four_arms() -> None:
    image = Image.new("RGB", (CAM.width_px, CAM.height_px))
    U.mark_center(image, np.array([320.0, 240.0, 600.0]), CAM, 300.0, (255, 0, 0))
    px = np.asarray(image)[..., 0] > 0
    arm = 10  # the arms reach max(5, 480 / 40) = 12 px
    assert px[240, 320 + arm] and px[240, 320 - arm] and px[240 + arm, 320] and px[240 - arm, 320]
    assert not px[240 + 16, 320 + 16]


def test_depth_image_keeps_depths_below_a_millimetre() -> None:
    raw = np.zeros((2, 2))
    raw[0, 0], raw[1, 1] = 0.5, 0.75  # a unit other than mm: still valid pixels
    grey = np.asarray(U.depth_image(raw))[..., 0]
    assert grey[0, 0] > 0 and grey[1, 1] > 0 and grey[0, 1] == grey[1, 0] == 0


def test_each_hands_mesh_fits_its_joints_and_the_wrong_hand_does_not(tmp_path) -> None:
    """A right hand's joints meshed as a right hand lie on its surface; fitted as a left hand (the
    handedness flag inverted) they do not; its mirror image meshed as a left hand does again."""
    import trimesh

    from crossingnets.hand.kinematics import forward_kinematics, landmarks_to_joints
    from crossingnets.hand.sampler import sample_hands

    pose, shape = sample_hands(np.random.default_rng(1), 1, CAM)
    joints = np.asarray(landmarks_to_joints(forward_kinematics(pose, shape), NYU))[0]

    def farthest_joint_mm(joints_mm, handedness):
        path = U.write_pose_mesh(joints_mm, NYU, tmp_path / f"{handedness}.glb", 10, handedness)
        assert path == tmp_path / f"{handedness}.glb"
        vertices = trimesh.load(path, force="mesh").vertices
        return np.linalg.norm(joints_mm[:, None] - vertices[None], axis=-1).min(axis=1).max()

    assert farthest_joint_mm(joints, "right") < 12.0  # measured 8.2
    assert farthest_joint_mm(joints, "left") > 15.0  # the mirror fit: 20.8
    assert farthest_joint_mm(joints * [-1, 1, 1], "left") < 12.0


def test_the_preview_caption_gives_each_centre_in_pixels_and_mm(tmp_path) -> None:
    from crossingnets.data.depth_file import DEFAULT_LIMITS
    from crossingnets.data.preprocess import detect_center

    depth = np.zeros((CAM.height_px, CAM.width_px), np.uint16)
    depth[200:260, 300:340] = 650  # a box of a hand 650 mm away, off the image's centre
    Image.fromarray(depth).save(tmp_path / "box.png")
    crop = CropConfig(cube_mm=300.0, crop_px=64)
    ex = SimpleNamespace(
        config=SimpleNamespace(limits=DEFAULT_LIMITS), crop=crop, estimator=SimpleNamespace(crop=crop)
    )
    u, v, d = detect_center(depth.astype(np.float32), CAM, crop)
    view = U.preview_view(ex, tmp_path / "box.png", "nyu", None, (100.0, 50.0, 700.0))
    assert view.caption == (
        f"detector: u={u:.0f} px, v={v:.0f} px, d={d:.0f} mm · your centre: u=100 px, v=50 px, d=700 mm"
    )
    assert (round(u), round(v), round(d)) == (320, 230, 650)  # the box's middle, not the frame's


def test_marks_are_two_pixels_thick() -> None:
    """The preview is shown scaled down: a 1-px line would vanish, a thicker one hide the frame."""
    image = Image.new("RGB", (CAM.width_px, CAM.height_px))
    U.mark_center(image, np.array([320.0, 240.0, 600.0]), CAM, 300.0, (255, 0, 0))
    px = np.asarray(image)[..., 0] > 0
    assert len(np.nonzero(px[240 + 30])[0]) == 4  # the square's two sides, 2 px each
    assert len(np.nonzero(px[200:280, 320 + 8])[0]) == 2  # the cross's horizontal arm
    assert len(np.nonzero(px[240 - 8, 300:340])[0]) == 2  # and its vertical one


def test_depth_image_of_one_depth_is_drawn_not_undefined() -> None:
    """Valid pixels all at one depth (no spread to scale by) get the far grey: seen against the
    missing pixels' black, not a division by zero's undefined value."""
    raw = np.zeros((4, 6))
    raw[1:3, 2:5] = 650.0
    grey = np.asarray(U.depth_image(raw))[..., 0]
    assert (grey[1:3, 2:5] == 40).all() and (grey[0] == 0).all()


def test_the_record_rounds_latent_joints_and_latency_to_their_places() -> None:
    p = _prediction()
    p = Prediction(**{**p.__dict__, "latent": np.full(35, 0.123456789, np.float32)})
    p.joints_xyz_mm[0] = [1.23456, -2.34567, 600.45678]
    record = U.pose_record(U.PoseResult(p, np.ones((64, 64)), 0.0123456), NYU)
    assert record["latent"][0] == 0.123457 and record["joints"][0]["xyz_mm"] == [1.235, -2.346, 600.457]
    assert record["latency_ms"] == 12.35


def test_a_mesh_needs_a_pose_first(tmp_path) -> None:
    with pytest.raises(ValueError, match="estimate a pose first"):
        U.mesh_view(SimpleNamespace(), None, tmp_path)
