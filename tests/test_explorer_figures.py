"""The explorer's Plotly figure dicts (valid Plotly, finger colours, fixed axes, animation frames) and
its depth pictures (mm, points, colours, colour bar)."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from crossingnets.data.preprocess import CropConfig
from crossingnets.explorer.figures import (
    centered_to_crop_uv,
    cloud_trace,
    colour_bar,
    crop_points_mm,
    crop_to_mm,
    depth_picture,
    depth_range_mm,
    depth_rgb,
    figure_page,
    fitted_scene,
    hand_figure,
    iframe,
    skeleton_figure,
    skeleton_over_depth,
    skeleton_traces,
    smoothness_figure,
    walk_figure,
)
from crossingnets.explorer.synthesis import (
    EXTRA_RGB,
    MISSED_RGB,
    crop_difference,
    difference_picture,
    joint_error_figure,
    joint_errors_mm,
    synthesis_view,
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


@pytest.mark.parametrize("with_clouds", [False, True])
def test_walk_figure_frames_buttons_and_slider(rng, with_clouds):
    convention = get_convention("nyu")
    steps = 5
    joints = rng.normal(0, 40, (steps, 14, 3))
    clouds = [rng.normal(0, 40, (50, 3)) for _ in range(steps)] if with_clouds else None
    fig = walk_figure(joints, [PIXEL_URI] * steps, convention, 100, clouds, (-50.0, 50.0))
    go.Figure(fig)
    assert len(fig["frames"]) == steps
    assert all(len(f["data"]) == len(FINGERS) + 1 + with_clouds for f in fig["frames"])
    if with_clouds:  # one colour scale for the whole walk, set once; each step brings its colours
        assert fig["data"][len(FINGERS)]["marker"]["cmin"] == -50.0
        assert all(set(f["data"][len(FINGERS)]["marker"]) == {"color"} for f in fig["frames"])
    # a frame carries what changes (coordinates, colours, image), the styles stay in `data`
    assert all(
        set(t) <= {"type", "x", "y", "z", "source", "marker"} for f in fig["frames"] for t in f["data"]
    )
    assert fig["frames"][2]["data"][0]["x"] == skeleton_traces(joints[2], convention)[0]["x"]
    assert [f["name"] for f in fig["frames"]] == [
        s["args"][0][0] for s in fig["layout"]["sliders"][0]["steps"]
    ]
    labels = [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]]
    assert labels == ["Play", "Pause"]
    assert fig["layout"]["scene"]["xaxis"]["autorange"] is False  # fixed ranges: nothing jumps


def test_walk_figure_needs_one_image_per_step(rng):
    with pytest.raises(ValueError, match="as many depth maps"):
        walk_figure(rng.normal(size=(3, 14, 3)), [PIXEL_URI], get_convention("nyu"))
    with pytest.raises(ValueError, match="one point cloud per step"):
        walk_figure(
            rng.normal(size=(2, 14, 3)), [PIXEL_URI] * 2, get_convention("nyu"), 100, [np.zeros((1, 3))]
        )


def test_smoothness_figure():
    fig = smoothness_figure(np.array([0.1, 0.2, 0.3]), np.array([0.12, 0.18, 0.5]))
    go.Figure(fig)
    points, diagonal = fig["data"]
    assert points["x"] == [0.1, 0.2, 0.3] and points["y"] == [0.12, 0.18, 0.5]
    assert diagonal["x"] == diagonal["y"]
    with pytest.raises(ValueError, match="two equal 1-D"):
        smoothness_figure(np.zeros(3), np.zeros(4))


def test_figure_page_in_iframe(rng):
    fig = walk_figure(rng.normal(size=(2, 14, 3)), [PIXEL_URI] * 2, get_convention("nyu"))
    page = figure_page(fig, "gradio_api/file=/x/plotly.min.js")
    assert 'src="gradio_api/file=/x/plotly.min.js"' in page and "addFrames" in page
    frame = iframe(page, 300)
    assert frame.startswith("<iframe srcdoc=") and "height:300px" in frame
    assert html.unescape(frame.split('srcdoc="')[1].split('" style=')[0]) == page


# -- the hand in 3D and its depth in colour ------------------------------------------------------------


def test_fitted_scene_holds_the_joints_with_a_margin_and_rounds():
    joints = np.array([[-20.0, -70.0, 10.0], [40.0, 30.0, 30.0]])
    center, half = fitted_scene(joints, margin_mm=20.0)
    np.testing.assert_allclose(center, [10.0, -20.0, 20.0])
    assert half == 80.0  # 50 mm to the farthest joint + 20 mm margin, rounded up to 20 mm
    assert np.all(np.abs(joints - center) <= half - 20.0)
    nudged, half2 = fitted_scene(joints + 1.0, margin_mm=20.0)  # a small move keeps the axes
    np.testing.assert_allclose(nudged, center)
    assert half2 == half


def test_crop_to_mm_and_points_invert_the_crop():
    cube = 300.0
    crop = np.ones((8, 8), np.float32)
    crop[2, 5] = -0.2  # one hand pixel 30 mm in front of the centre
    depth = crop_to_mm(crop, cube)
    assert np.isnan(depth).sum() == 63 and depth[2, 5] == pytest.approx(-30.0)
    ((x, y, z),) = crop_points_mm(crop, cube)
    assert (x, y, z) == pytest.approx(((5 - 3.5) * cube / 8, (2 - 3.5) * cube / 8, -30.0))
    # the point projects back onto its pixel (the skeleton's inverse)
    crop_cfg = CropConfig(cube_mm=cube, crop_px=8)
    np.testing.assert_allclose(centered_to_crop_uv(np.array([[x, y, z]]), crop_cfg), [[5.0, 2.0]])
    full = np.full((8, 8), -0.1, np.float32)
    assert len(crop_points_mm(full, cube)) == 64 and len(crop_points_mm(full, cube, stride=2)) == 16


def test_depth_colours_near_bright_background_white_and_range():
    rgb = depth_rgb(np.array([[-50.0, 50.0, np.nan]]), -50.0, 50.0)
    near, far, background = (tuple(int(c) for c in rgb[0, i]) for i in range(3))
    assert sum(near) > sum(far)  # viridis reversed: near is yellow, far dark purple
    assert near == (253, 231, 37) and far == (68, 1, 84) and background == (255, 255, 255)
    assert depth_range_mm(np.array([np.nan, 3.0, 7.0])) == (-30.0, 40.0)  # widened to 60 mm, rounded
    lo, hi = depth_range_mm(np.linspace(-85.0, 120.0, 1000))
    assert lo <= -80 and hi >= 110 and lo % 10 == 0 and hi % 10 == 0


def test_depth_picture_and_colour_bar():
    depth = np.array([[-40.0, np.nan], [0.0, 40.0]])
    image = depth_picture(depth, -40.0, 40.0, 4, bar=False)
    assert image.size == (8, 8) and image.getpixel((0, 0)) == (253, 231, 37)
    with_bar = colour_bar(Image.new("RGB", (100, 100), "white"), -40.0, 40.0)
    assert with_bar.size[1] == 100 and with_bar.size[0] > 100
    pixels = np.asarray(with_bar)[:, 100 + 8]  # down the bar: far (dark) at the top, near (bright) below
    assert pixels[20].sum() < pixels[90].sum()


def test_hand_figure_puts_the_skeleton_inside_the_cloud(rng):
    convention = get_convention("nyu")
    joints = rng.normal(0, 30, (14, 3))
    cloud = np.vstack([joints + rng.normal(0, 5, (14, 3)), [[1000.0, 0, 0]]])  # one point far outside
    fig = hand_figure(joints, cloud, convention, (-50.0, 50.0), "t")
    go.Figure(fig)
    assert [t["name"] for t in fig["data"]] == [*FINGERS, "generated depth"]
    points = fig["data"][-1]
    assert len(points["x"]) == 14  # the point outside the fitted axes is dropped
    assert points["marker"]["colorbar"]["title"]["text"] == "depth (mm)"
    scene = fig["layout"]["scene"]
    for axis in "xyz":  # fitted to the hand (the cube is 300 mm), every point inside
        lo, hi = scene[f"{axis}axis"]["range"]
        values = np.array(points[axis])
        assert hi - lo < 300 and np.all((lo <= values) & (values <= hi))
    trace = cloud_trace(np.zeros((2, 3)), -10.0, 10.0, bar_x=0.5)
    assert trace["marker"]["colorbar"]["x"] == 0.5 and trace["marker"]["reversescale"] is True


def test_skeleton_over_depth_draws_bones_on_the_colours():
    convention = get_convention("nyu")
    crop_cfg = CropConfig(cube_mm=300.0, crop_px=32)
    crop = np.full((32, 32), -0.1, np.float32)
    joints = np.zeros((14, 3))
    joints[0] = [60.0, 0.0, 0.0]  # the pinky tip 60 mm right of the palm, at the centre
    image = skeleton_over_depth(crop, joints, convention, crop_cfg, (-50.0, 50.0), bar=False)
    assert image.size == (256, 256)
    pixels = np.asarray(image)
    colours = {tuple(p) for p in pixels.reshape(-1, 3)}
    assert (0x91, 0x1E, 0xB4) in colours  # the pinky's purple bone
    assert tuple(pixels[5, 5]) == tuple(depth_rgb(np.array([-15.0]), -50.0, 50.0)[0])  # the depth colour
    assert skeleton_over_depth(crop, joints, convention, crop_cfg, (-50.0, 50.0)).size[0] > 256


# -- analysis by synthesis (pure functions for the upload tab) ----------------------------------------


def test_crop_difference_in_mm_and_silhouettes():
    cube = 300.0
    given = np.ones((4, 4), np.float32)
    generated = np.ones((4, 4), np.float32)
    given[1, 1:3] = 0.0  # two hand pixels at the centre's depth
    generated[1, 2:4] = 0.1  # the generator: one of them 15 mm farther, one pixel beside
    diff = crop_difference(given, generated, cube)
    assert diff.mm[1, 2] == pytest.approx(15.0) and np.isfinite(diff.mm).sum() == 1
    assert diff.missed[1, 1] and diff.extra[1, 3] and diff.missed.sum() == diff.extra.sum() == 1
    assert diff.iou == pytest.approx(1 / 3) and diff.mean_abs_mm == pytest.approx(15.0)
    picture = np.asarray(difference_picture(diff, 16))
    assert tuple(picture[1 * 16, 1 * 16]) == MISSED_RGB and tuple(picture[1 * 16, 3 * 16]) == EXTRA_RGB
    assert picture[1 * 16, 2 * 16, 2] < 200 < picture[1 * 16, 2 * 16, 0]  # farther: red
    assert tuple(picture[0, 0]) == (255, 255, 255)  # no hand in either: background
    with pytest.raises(ValueError, match="one shape"):
        crop_difference(given, np.ones((5, 5)), cube)


def test_synthesis_view_shares_one_colour_range():
    crop = np.ones((32, 32), np.float32)
    crop[8:24, 10:20] = -0.2
    view = synthesis_view(crop, crop.copy(), 300.0)
    a, b = np.asarray(view.input_image), np.asarray(view.generated_image)
    np.testing.assert_array_equal(a, b)  # the same depths, the same colours
    assert view.input_image.size[1] == 256 and view.difference_image.size[1] == 256
    assert "overlap 100 %" in view.summary and "0.0 mm" in view.summary


def test_joint_errors_and_their_figure(rng):
    convention = get_convention("nyu")
    truth = rng.normal(0, 40, (14, 3))
    moved = truth.copy()
    moved[3] += [3.0, 4.0, 0.0]
    errors = joint_errors_mm(moved, truth)
    assert errors[3] == pytest.approx(5.0) and np.delete(errors, 3).max() == 0.0
    fig = joint_error_figure(errors, convention)
    go.Figure(fig)
    assert (
        fig["data"][0]["x"][3] == "ring_root"
        and fig["data"][0]["marker"]["color"][3] == FINGER_COLORS["ring"]
    )
    assert "mean 0.4 mm" in fig["layout"]["title"]["text"]
    with pytest.raises(ValueError, match=r"both be \(J, 3\)"):
        joint_errors_mm(moved, truth[:5])
    with pytest.raises(ValueError, match="one error per NYU joint"):
        joint_error_figure(errors[:5], convention)
