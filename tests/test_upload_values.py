"""The upload tab's small pieces by value: camera menu, the frame preview's grey levels and marks,
the record's latency, the 3D view's cube, the label notes (gaps mutation testing found)."""

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
