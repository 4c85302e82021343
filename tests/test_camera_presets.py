"""Camera presets of common depth sensors, and fitting a camera to a frame's size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossingnets.camera import CAMERAS, PRESETS, Intrinsics, camera_for_frame, fov_camera, uvd_to_xyz


def test_every_preset_named_in_the_issue_is_there_with_a_source():
    wanted = {"nyu", "icvl", "msra", "kinect_v1", "kinect_v2", "azure_kinect", "d415", "d435", "d455", "l515"}
    assert wanted | {"sr300", "sr305", "astra", "femto_bolt"} <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.modes and len(preset.source) > 20, name
        assert len({m.size for m in preset.modes}) == len(preset.modes), name  # a size picks one mode


@pytest.mark.parametrize(
    ("name", "sizes", "unit_mm"),
    [
        ("nyu", ["640x480"], 1.0),
        ("kinect_v2", ["512x424"], 1.0),
        ("azure_kinect", ["640x576", "1024x1024"], 1.0),
        ("d435", ["1280x720", "848x480"], 1.0),
        ("l515", ["1024x768", "640x480"], 0.25),
        ("sr305", ["640x480"], 0.125),
        ("astra", ["640x480"], 1.0),
    ],
)
def test_presets_are_at_their_depth_resolutions(name, sizes, unit_mm):
    assert [m.size for m in PRESETS[name].modes] == sizes
    assert PRESETS[name].depth_unit_mm == unit_mm


def test_dataset_presets_are_the_community_values():
    for name in ("nyu", "icvl", "msra"):
        assert PRESETS[name].modes == (CAMERAS[name],)
    sr305 = PRESETS["sr305"].modes[0]  # the sample frames' readme
    assert (sr305.fx, sr305.cx, sr305.cy) == (476.007, 313.683, 242.755)


def test_fov_camera_matches_its_field_of_view():
    cam = fov_camera(1280, 720, 58.0)  # D435
    assert cam.fx == cam.fy and (cam.cx, cam.cy) == (639.5, 359.5)
    top, bottom = uvd_to_xyz(np.array([[cam.cx, -0.5, 1000.0], [cam.cx, 719.5, 1000.0]]), cam)
    assert math.degrees(math.atan2(bottom[1], 1000) - math.atan2(top[1], 1000)) == pytest.approx(58.0)
    assert cam.fx == pytest.approx(649.5, abs=0.1)


def test_azure_nfov_is_a_window_of_the_wfov_sensor():
    nfov, wfov = PRESETS["azure_kinect"].modes
    assert (nfov.fx, nfov.fy) == (wfov.fx, wfov.fy)
    assert (wfov.cx - nfov.cx, wfov.cy - nfov.cy) == pytest.approx((192, 180))


def test_a_matching_frame_takes_the_preset_and_a_multiple_is_scaled():
    assert camera_for_frame("nyu", (480, 640)) == CAMERAS["nyu"]
    # 2x2 binning (Azure Kinect NFOV binned): half the focal length, pixel centres kept consistent
    binned = camera_for_frame("azure_kinect", (288, 320))
    nfov = PRESETS["azure_kinect"].modes[0]
    assert (binned.width_px, binned.height_px) == (320, 288)
    assert binned.fx == pytest.approx(nfov.fx / 2) and binned.cx == pytest.approx((nfov.cx + 0.5) / 2 - 0.5)
    # a point seen by both: the binned pixel (u, v) covers unbinned pixels 2u..2u+1 (centre 2u + 0.5)
    point = uvd_to_xyz(np.array([100.0, 80.0, 700.0]), binned)
    np.testing.assert_allclose(point, uvd_to_xyz(np.array([200.5, 160.5, 700.0]), nfov))
    assert camera_for_frame("azure_kinect", (512, 512)).size == "512x512"  # WFOV binned
    doubled = camera_for_frame("icvl", (480, 640))  # up: twice the resolution
    assert doubled.fx == pytest.approx(2 * CAMERAS["icvl"].fx)
    assert camera_for_frame(doubled, (240, 320)) == pytest.approx(CAMERAS["icvl"])


@pytest.mark.parametrize(
    ("camera", "shape", "message"),
    [
        ("nyu", (424, 512), "the frame is 512x424 px but the NYU camera is 640x480"),
        ("d435", (480, 640), "RealSense D435 camera is 1280x720 or 848x480"),
        ("icvl", (240, 480), "ICVL camera is 320x240"),  # twice as wide, not twice as high
        ("kinect9", (480, 640), "unknown camera 'kinect9'"),
        ("intrinsics.txt", (480, 640), "camera file (.yaml, .yml, .json)"),
    ],
)
def test_a_frame_of_another_size_is_refused_with_what_to_do(camera, shape, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        camera_for_frame(camera, shape)
    if "unknown" not in message and "file" not in message:
        assert "camera file" in str(err.value) and "custom" in str(err.value)


def test_custom_camera_takes_the_frame_size():
    cam = camera_for_frame("custom", (100, 200), (300.0, 310.0, 99.5, 49.5))
    assert cam == Intrinsics(300.0, 310.0, 99.5, 49.5, 200, 100)
    for bad, message in [((0.0, 1.0, 1.0, 1.0), "fx and fy must be > 0"), ((None, 1, 1, 1), "four numbers")]:
        with pytest.raises(ValueError, match=message):
            camera_for_frame("custom", (100, 200), bad)
    with pytest.raises(ValueError, match="must be finite"):
        camera_for_frame("custom", (100, 200), (300.0, 300.0, float("nan"), 1.0))
    with pytest.raises(ValueError, match="needs fx, fy, cx, cy"):
        camera_for_frame("custom", (100, 200))


def test_mirrored_camera_sees_the_mirrored_point():
    cam = Intrinsics(500.0, 500.0, 300.0, 250.0, 640, 480)
    xyz = uvd_to_xyz(np.array([100.0, 70.0, 800.0]), cam)
    mirrored = uvd_to_xyz(np.array([639.0 - 100.0, 70.0, 800.0]), cam.mirrored())
    np.testing.assert_allclose(mirrored, xyz * [-1, 1, 1])
    assert cam.mirrored().mirrored() == cam
