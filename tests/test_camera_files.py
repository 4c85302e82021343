"""Intrinsics read from camera files: ROS camera_info YAML, RealSense and Open3D JSON."""

from __future__ import annotations

import json

import pytest

from crossingnets.camera import Intrinsics, camera_for_frame, read_camera_file

EXPECTED = Intrinsics(383.2, 383.9, 321.5, 240.25, 640, 480)

ROS_CAMERA_INFO = """\
image_width: 640
image_height: 480
camera_name: depth
camera_matrix:
  rows: 3
  cols: 3
  data: [383.2, 0, 321.5, 0, 383.9, 240.25, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0, 0, 0, 0, 0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [383.2, 0, 321.5, 0, 0, 383.9, 240.25, 0, 0, 0, 1, 0]
"""

ROS2_ECHO = """\
header:
  frame_id: camera_depth_optical_frame
height: 480
width: 640
distortion_model: plumb_bob
d: [0.0, 0.0, 0.0, 0.0, 0.0]
k: [383.2, 0.0, 321.5, 0.0, 383.9, 240.25, 0.0, 0.0, 1.0]
"""

REALSENSE = {"width": 640, "height": 480, "ppx": 321.5, "ppy": 240.25, "fx": 383.2, "fy": 383.9,
             "model": "Brown Conrady", "coeffs": [0, 0, 0, 0, 0]}  # fmt: skip
OPEN3D = {"width": 640, "height": 480, "intrinsic_matrix": [383.2, 0, 0, 0, 383.9, 0, 321.5, 240.25, 1]}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ros_camera_info.yaml", ROS_CAMERA_INFO),
        ("ros2_echo.yml", ROS2_ECHO),
        ("opencv.yaml", "%YAML:1.0\n" + ROS_CAMERA_INFO),
        ("realsense.json", json.dumps(REALSENSE)),
        ("realsense_nested.json", json.dumps({"depth": REALSENSE})),
        (
            "cx_cy.json",
            json.dumps({"Width": 640, "Height": 480, "fx": 383.2, "fy": 383.9, "cx": 321.5, "cy": 240.25}),
        ),
        ("open3d.json", json.dumps(OPEN3D)),
    ],
)
def test_camera_files_in_every_layout(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    assert read_camera_file(tmp_path / name) == EXPECTED


def test_a_camera_file_is_fitted_to_the_frame(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text(ROS_CAMERA_INFO)
    assert camera_for_frame(path, (480, 640)) == EXPECTED
    assert camera_for_frame(str(path), (240, 320)).fx == pytest.approx(383.2 / 2)  # half resolution
    with pytest.raises(ValueError, match="the frame is 848x480 px but the file cam.yaml camera is 640x480"):
        camera_for_frame(path, (480, 848))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.json", "{fx: 3", "broken.json is not valid JSON"),
        ("broken.yaml", "a: [1, 2", "broken.yaml is not valid YAML"),
        ("list.json", "[1, 2, 3]", "holds a list, not named camera values"),
        ("nofx.json", json.dumps({"width": 640, "height": 480, "fy": 1, "ppx": 1, "ppy": 1}), "has no fx"),
        (
            "noheight.json",
            json.dumps({"width": 640, "fx": 1, "fy": 1, "ppx": 1, "ppy": 1}),
            "has no image_height or height",
        ),
        ("text.json", json.dumps({**REALSENSE, "fx": "wide"}), "fx is 'wide', not a number"),
        ("k8.yaml", "width: 640\nheight: 480\nk: [1, 2, 3]\n", "k must hold 9 numbers"),
        ("zero.json", json.dumps({**REALSENSE, "fy": 0}), "focal lengths must be finite and > 0"),
        ("half.json", json.dumps({**REALSENSE, "width": 640.5}), "whole pixels"),
    ],
)
def test_bad_camera_files_say_what_is_wrong(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        read_camera_file(tmp_path / name)


def test_missing_camera_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        camera_for_frame(tmp_path / "nope.json", (480, 640))
