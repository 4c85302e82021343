"""The explorer's Plotly figure dicts: valid Plotly, finger colours, fixed axes, animation frames."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import pytest

from crossingnets.explorer.figures import (
    figure_page,
    iframe,
    skeleton_figure,
    skeleton_traces,
    smoothness_figure,
    walk_figure,
)
from crossingnets.hand.conventions import FINGER_COLORS, FINGERS, get_convention

PIXEL_URI = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB4iG8MwAAAABJRU5ErkJggg=="


@pytest.mark.parametrize("name", ["nyu", "icvl", "msra"])
def test_skeleton_figure_is_valid_plotly_with_finger_colours(rng, name):
    convention = get_convention(name)
    joints = rng.normal(0, 40, (convention.num_joints, 3)) + [0, 0, 600]
    fig = skeleton_figure(joints, convention, np.array([0, 0, 600.0]), 125.0, "t")
    go.Figure(fig)  # raises on any property Plotly does not know
    assert [t["name"] for t in fig["data"]] == list(FINGERS)
    for trace in fig["data"]:
        assert trace["line"]["color"] == FINGER_COLORS[trace["name"]]
    # every bone drawn once: two points and a break each
    assert sum(len(t["x"]) for t in fig["data"]) == 3 * len(convention.bones)
    scene = fig["layout"]["scene"]
    assert scene["xaxis"]["range"] == [-125.0, 125.0]
    assert scene["yaxis"]["range"] == [475.0, 725.0]  # depth axis around the centre
    assert all("(mm)" in scene[f"{a}axis"]["title"]["text"] for a in "xyz")
    assert fig["layout"]["uirevision"] and scene["camera"]


def test_display_axes_put_up_as_minus_y():
    convention = get_convention("nyu")
    joints = np.zeros((convention.num_joints, 3))
    joints[1] = [10.0, -20.0, 30.0]  # pinky root: right, up (y down), forward
    pinky = skeleton_traces(joints, convention)[FINGERS.index("pinky")]
    assert (pinky["x"][1], pinky["y"][1], pinky["z"][1]) == (10.0, 30.0, 20.0)


def test_skeleton_rejects_wrong_joint_count():
    with pytest.raises(ValueError, match=r"\(14, 3\)"):
        skeleton_traces(np.zeros((16, 3)), get_convention("nyu"))


def test_walk_figure_frames_buttons_and_slider(rng):
    convention = get_convention("nyu")
    steps = 5
    fig = walk_figure(rng.normal(0, 40, (steps, 14, 3)), [PIXEL_URI] * steps, convention, 125.0, 100)
    go.Figure(fig)
    assert len(fig["frames"]) == steps
    assert all(len(f["data"]) == len(FINGERS) + 1 for f in fig["frames"])
    assert [f["name"] for f in fig["frames"]] == [
        s["args"][0][0] for s in fig["layout"]["sliders"][0]["steps"]
    ]
    labels = [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]]
    assert labels == ["Play", "Pause"]
    assert fig["layout"]["scene"]["xaxis"]["autorange"] is False  # fixed ranges: nothing jumps


def test_walk_figure_needs_one_image_per_step(rng):
    with pytest.raises(ValueError, match="as many depth maps"):
        walk_figure(rng.normal(size=(3, 14, 3)), [PIXEL_URI], get_convention("nyu"), 125.0)


def test_smoothness_figure():
    fig = smoothness_figure(np.array([0.1, 0.2, 0.3]), np.array([0.12, 0.18, 0.5]))
    go.Figure(fig)
    points, diagonal = fig["data"]
    assert points["x"] == [0.1, 0.2, 0.3] and points["y"] == [0.12, 0.18, 0.5]
    assert diagonal["x"] == diagonal["y"]
    with pytest.raises(ValueError, match="two equal 1-D"):
        smoothness_figure(np.zeros(3), np.zeros(4))


def test_figure_page_in_iframe(rng):
    fig = walk_figure(rng.normal(size=(2, 14, 3)), [PIXEL_URI] * 2, get_convention("nyu"), 125.0)
    page = figure_page(fig, "gradio_api/file=/x/plotly.min.js")
    assert 'src="gradio_api/file=/x/plotly.min.js"' in page and "addFrames" in page
    frame = iframe(page, 300)
    assert frame.startswith("<iframe srcdoc=") and "height:300px" in frame
    assert html.unescape(frame.split('srcdoc="')[1].split('" style=')[0]) == page
