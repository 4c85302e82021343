"""The app's example frames and their labels (`crossingnets.explorer.examples`): the labels are the
hands in the frames, today's generator draws the same hands, and the examples folder's other files
are not taken for frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossingnets.camera import CAMERAS, xyz_to_uvd
from crossingnets.data.depth_file import load_depth
from crossingnets.explorer.examples import (
    example_camera,
    example_frames,
    labels_path,
    read_labels,
    write_examples,
)
from crossingnets.hand.conventions import CONVENTIONS

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"


def on_the_hand(depth_mm: np.ndarray, joints_xyz_mm: np.ndarray, camera: str) -> float:
    """The fraction of joints lying just behind the surface the frame sees at their pixel (0-60 mm:
    inside a finger or the palm); an occluded joint lies far behind the finger in front of it, and
    another hand's joints mostly on the background or on nothing."""
    uvd = xyz_to_uvd(joints_xyz_mm, CAMERAS[camera])
    u, v = np.round(uvd[:, 0]).astype(int), np.round(uvd[:, 1]).astype(int)
    assert np.all((u >= 0) & (u < depth_mm.shape[1]) & (v >= 0) & (v < depth_mm.shape[0]))
    behind = uvd[:, 2] - depth_mm[v, u]
    return float(np.mean((behind > -5) & (behind < 60)))


def test_every_frame_has_labels_of_its_hand_in_every_convention():
    frames = example_frames(EXAMPLES)
    names = ["synthetic_msra.bin", *(f"synthetic_nyu_{k}.png" for k in ("0", "1", "2", "rgb"))]
    assert [p.name for p in frames] == names
    for frame in frames:
        labels = read_labels(frame)
        assert labels.camera == example_camera(frame) and set(labels.joints_xyz_mm) == set(CONVENTIONS)
        depth = load_depth(frame)
        for name, joints in labels.joints_xyz_mm.items():
            assert on_the_hand(depth, joints, labels.camera) >= 0.65, (frame.name, name)
    # the test can fail: one frame's labels on another frame's hand
    other = read_labels(EXAMPLES / "synthetic_nyu_0.png").joints_xyz_mm["nyu"]
    assert on_the_hand(load_depth(EXAMPLES / "synthetic_nyu_1.png"), other, "nyu") < 0.3


def test_todays_generator_draws_the_shipped_hands(tmp_path):
    """The shipped frames came from an earlier renderer; the hands (and so the labels) are the
    ones today's generator draws from the same seed, and the frames it writes carry them."""
    written = write_examples(tmp_path)
    assert [p.name for p in written[:2]] == ["synthetic_nyu_0.png", "synthetic_nyu_0.png.json"]
    for frame in example_frames(tmp_path):
        assert json.loads(labels_path(frame).read_text()) == json.loads(
            labels_path(EXAMPLES / frame.name).read_text()
        )
        joints = read_labels(frame).joints_xyz_mm["nyu"]
        assert on_the_hand(load_depth(frame), joints, example_camera(frame)) >= 0.65, frame.name
    only_labels = write_examples(tmp_path / "labels", frames=False)
    assert [p.suffix for p in only_labels] == [".json"] * 5


def test_labels_files_are_checked(tmp_path):
    frame = tmp_path / "a.png"
    assert read_labels(frame) is None  # a frame without labels
    labels_path(frame).write_text("{not json")
    with pytest.raises(ValueError, match="labels a.png.json: not a labels file"):
        read_labels(frame)
    labels_path(frame).write_text(json.dumps({"camera": "nyu", "joints_xyz_mm": {"nyu": [[0, 0, 500]] * 13}}))
    with pytest.raises(ValueError, match=r"'nyu' joints of shape \(13, 3\) match no convention"):
        read_labels(frame)
    labels_path(frame).write_text(json.dumps({"camera": "webcam", "joints_xyz_mm": {}}))
    with pytest.raises(ValueError, match="unknown camera 'webcam'"):
        read_labels(frame)
    (tmp_path / "notes.txt").write_text("x")
    assert example_frames(tmp_path) == []  # neither labels nor notes are frames
