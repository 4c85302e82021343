"""The explorer on a tiny initialised Crossing Net: its latent space, then each tab's functions and view."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import trimesh
from PIL import Image

from crossingnets.camera import CAMERAS, uvd_to_xyz
from crossingnets.checkpoint import LatentStats
from crossingnets.data.preprocess import CropConfig, NoHandError, detect_center
from crossingnets.explorer.figures import DEPTH_COLOURS, centered_to_crop_uv, generated_to_crop
from crossingnets.explorer.latent import latent_from_named, latent_from_sliders, latent_view, random_latent
from crossingnets.explorer.space import Explorer, ExplorerConfig, LatentAxes
from crossingnets.explorer.upload import (
    CAMERA_CHOICES,
    PREVIEW_COLOURS,
    camera_choice_label,
    camera_spec,
    depth_image,
    estimate_pose,
    mesh_view,
    pose_csv,
    pose_record,
    preview_view,
    upload_view,
    write_pose_mesh,
)
from crossingnets.explorer.walk import (
    WALK_MODES,
    interpolate,
    loop_frames,
    random_walk,
    run_walk,
    upload_latents,
    walk_figures,
    walk_gif,
    walk_latents,
    walk_view,
    write_gif,
)
from crossingnets.hand.conventions import FINGERS, get_convention
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import PRESETS, CrossingNet, ScratchRegressor

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
LATENT_DIMS = 23  # the paper's z_y: 20-d code + 3-d root offset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny initialised Crossing Net with a latent PCA of made-up latents (shapes, not accuracy)."""
    torch.manual_seed(0)
    latents = np.random.default_rng(0).standard_normal((128, LATENT_DIMS)) * np.linspace(
        1.5, 0.1, LATENT_DIMS
    )
    folder = tmp_path_factory.mktemp("tiny")
    return CrossingNet(PRESETS["tiny"]).save_pretrained(folder, latent_stats=LatentStats.fit(latents))


@pytest.fixture(scope="module")
def explorer(checkpoint) -> Explorer:
    return Explorer.load(checkpoint, EXAMPLES)


@pytest.fixture(scope="module")
def axes(explorer) -> LatentAxes:
    return explorer.axes


# -- the latent space (space.py) ---------------------------------------------------------------------


def test_slider_coordinates_round_trip(axes, rng):
    z = axes.sample(rng)[0]
    sigmas = np.array([1.5, -0.5, 2.0])
    moved = axes.with_sigmas(z, sigmas)
    # the stored PCA is float32, so its rows are orthonormal to ~1e-7
    np.testing.assert_allclose(axes.to_sigmas(moved)[:3], sigmas, atol=1e-5)
    np.testing.assert_allclose(axes.to_sigmas(moved)[3:], axes.to_sigmas(z)[3:], atol=1e-5)  # others kept
    np.testing.assert_allclose(axes.to_sigmas(axes.mean), 0, atol=1e-12)


def test_samples_follow_training_spread(axes):
    samples = axes.sample(np.random.default_rng(1), 4000)
    assert samples.shape == (4000, LATENT_DIMS)
    np.testing.assert_allclose(axes.to_sigmas(samples).std(axis=0), 1, atol=0.1)


def test_explorer_load(explorer):
    frames = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".png", ".bin")}
    assert len(frames) == 5 and set(explorer.examples) == frames  # the labels beside them are skipped
    assert (
        len(explorer.example_labels) == 5
        and explorer.labels_of(EXAMPLES / "synthetic_nyu_2.png").camera == "nyu"
    )
    assert len(explorer.labels) == 8 and explorer.labels[0].startswith("PC1 (")
    assert all("mm" in label for label in explorer.labels)
    sliders = explorer.sliders
    assert sliders.labels[1] == "index curl (deg)" and len(sliders.names) == len(sliders.info) == 10
    assert np.all(sliders.low < sliders.high) and (sliders.low[-1], sliders.high[-1]) == (-180.0, 180.0)
    # no index written for these weights: the app runs without it and says how to write one
    assert explorer.index is None and "crossingnets explorer-index --checkpoint" in explorer.index_note


def test_explorer_needs_latent_stats(tmp_path):
    folder = CrossingNet(PRESETS["tiny"]).save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match="no latent statistics"):
        Explorer.load(folder, None)


def test_explorer_needs_a_crossing_net(tmp_path):
    folder = ScratchRegressor(PRESETS["tiny"]).save_pretrained(tmp_path / "scratch")
    with pytest.raises(ValueError, match="'scratch' baseline"):
        Explorer.load(folder, None)


def test_explorer_refines_as_configured(checkpoint):
    """`crossingnets app --refine-iterations` reaches the estimator the upload tab runs."""
    model_default = HandPoseEstimator.from_pretrained(checkpoint).refine.iterations
    for iterations in (0, 3):
        explorer = Explorer.load(checkpoint, None, ExplorerConfig(refine_iterations=iterations))
        assert explorer.estimator.refine.iterations == iterations
    assert Explorer.load(checkpoint, None).estimator.refine.iterations == model_default


# -- upload tab --------------------------------------------------------------------------------------


def test_estimate_pose_matches_the_estimator(checkpoint):
    estimator = HandPoseEstimator.from_pretrained(checkpoint)
    path = EXAMPLES / "synthetic_nyu_0.png"
    result = estimate_pose(estimator, path, "nyu")
    pred = result.prediction
    direct = estimator.predict(np.asarray(Image.open(path), np.float32), CAMERAS["nyu"])
    np.testing.assert_allclose(pred.joints_xyz_mm, direct.joints_xyz_mm, atol=1e-3)
    np.testing.assert_allclose(pred.latent, direct.latent, atol=1e-5)
    assert pred.crop.shape == result.generated.shape == (32, 32)
    assert result.generated.max() <= 1.0 and result.seconds > 0
    np.testing.assert_allclose(uvd_to_xyz(pred.joints_uvd, CAMERAS["nyu"]), pred.joints_xyz_mm, atol=1e-2)
    # a given centre, away from the detected one, is the crop's centre
    center = pred.center_uvd + [6.0, -4.0, 25.0]
    given = estimate_pose(estimator, path, "nyu", center=tuple(center)).prediction
    np.testing.assert_allclose(given.center_uvd, center)
    np.testing.assert_allclose(given.center_xyz_mm, uvd_to_xyz(center, CAMERAS["nyu"]))


def test_no_hand_in_range(checkpoint, tmp_path):
    depth = np.full((480, 640), 4000, np.uint16)  # a wall 4 m away
    Image.fromarray(depth).save(tmp_path / "wall.png")
    with pytest.raises(NoHandError, match="no hand in range"):
        estimate_pose(HandPoseEstimator.from_pretrained(checkpoint), tmp_path / "wall.png", "nyu")


def test_downloads(explorer):
    result = estimate_pose(explorer.estimator, EXAMPLES / "synthetic_nyu_1.png", "nyu")
    record = json.loads(json.dumps(pose_record(result, explorer.convention)))
    assert [j["name"] for j in record["joints"]] == list(explorer.convention.joint_names)
    assert len(record["latent"]) == LATENT_DIMS and record["camera"]["fx"] == CAMERAS["nyu"].fx
    rows = pose_csv(result.prediction, explorer.convention).splitlines()
    assert rows[0] == "joint,name,finger,x_mm,y_mm,z_mm,u_px,v_px,d_mm" and len(rows) == 15
    np.testing.assert_allclose(
        [float(x) for x in rows[1].split(",")[3:6]], result.prediction.joints_xyz_mm[0], atol=1e-3
    )


def test_posed_mesh_glb(tmp_path, rng):
    joints = np.asarray(rng.normal(0, 30, (14, 3)) + [0, 0, 600], np.float32)  # the IK fits what it can
    path = write_pose_mesh(joints, get_convention("nyu"), tmp_path / "hand.glb", ik_iterations=3)
    mesh = trimesh.load(path, force="mesh")
    assert len(mesh.vertices) > 1000
    assert np.linalg.norm(mesh.vertices.mean(axis=0) - joints.mean(axis=0)) < 150  # near the joints


def test_upload_view(explorer, tmp_path):
    view = upload_view(explorer, EXAMPLES / "synthetic_msra.bin", "msra", None, None, tmp_path)
    assert view.overlay.size == (256, 256)
    synthesis = view.synthesis  # input | generated | difference, each with its colour bar
    assert synthesis.input_image.size == synthesis.generated_image.size  # one colour bar, one size
    assert synthesis.input_image.size[1] == synthesis.difference_image.size[1] == 256
    assert "IoU" in view.synthesis_note
    # an example: its labels give the error of each joint, in the model's (NYU) joints
    truth = explorer.labels_of(EXAMPLES / "synthetic_msra.bin").joints_xyz_mm["nyu"]
    np.testing.assert_allclose(
        view.joint_errors_mm, np.linalg.norm(view.joints_xyz_mm - truth, axis=1), atol=1e-3
    )
    go.Figure(view.error_figure)
    assert f"mean joint error **{view.joint_errors_mm.mean():.1f} mm**" in view.synthesis_note
    go.Figure(view.figure)
    assert " ms** server side" in view.summary
    assert [f.name for f in view.files] == ["joints.json", "joints.csv"] and all(
        f.is_file() for f in view.files
    )
    assert view.latent.shape == (LATENT_DIMS,) and view.joints_xyz_mm.shape == (14, 3)
    assert view.preview.size == (320, 240) and "detector: u=" in view.summary and "right hand" in view.summary


def test_joint_errors_only_with_labels_in_their_camera(explorer, tmp_path):
    renamed = tmp_path / "my_frame.png"  # an example under any name is recognised by its bytes
    renamed.write_bytes((EXAMPLES / "synthetic_nyu_1.png").read_bytes())
    view = upload_view(explorer, renamed, "nyu", None, None, tmp_path)
    assert view.joint_errors_mm.shape == (14,) and view.error_figure is not None
    nyu = CAMERAS["nyu"]  # the same frame through another camera: the labels are in NYU's frame
    other = upload_view(
        explorer, renamed, "custom", (nyu.fx * 1.1, nyu.fy * 1.1, nyu.cx, nyu.cy), None, tmp_path
    )
    assert other.joint_errors_mm is None and other.error_figure is None
    assert "choose that camera" in other.synthesis_note
    frame = np.asarray(Image.open(renamed)).copy()
    v, u = np.argwhere(frame > 0)[0]
    frame[v, u] += 1  # one pixel 1 mm farther: not the example any more
    Image.fromarray(frame).save(tmp_path / "edited.png")
    edited = upload_view(explorer, tmp_path / "edited.png", "nyu", None, None, tmp_path)
    assert edited.joint_errors_mm is None and "no labels for this frame" in edited.synthesis_note
    assert explorer.labels_of(tmp_path / "gone.png") is None  # a file Gradio's cache already removed


def test_left_hand_generated_crop_is_mirrored_like_its_input(explorer, tmp_path):
    """A left hand goes through the network mirrored; its input crop comes back mirrored, and so
    must the generated crop, or analysis by synthesis would compare a hand with its mirror image."""
    frame = np.asarray(Image.open(EXAMPLES / "synthetic_nyu_0.png"))
    Image.fromarray(np.ascontiguousarray(frame[:, ::-1])).save(tmp_path / "left.png")
    nyu = CAMERAS["nyu"]
    right = estimate_pose(explorer.estimator, EXAMPLES / "synthetic_nyu_0.png", "nyu")
    left = estimate_pose(
        explorer.estimator,
        tmp_path / "left.png",
        "custom",
        (nyu.fx, nyu.fy, 639 - nyu.cx, nyu.cy),
        handedness="left",
    )
    np.testing.assert_allclose(left.prediction.latent, right.prediction.latent, atol=1e-5)
    np.testing.assert_array_equal(left.prediction.crop, right.prediction.crop[:, ::-1])
    np.testing.assert_allclose(left.generated, right.generated[:, ::-1], atol=1e-5)
    assert not np.allclose(left.generated, right.generated, atol=1e-3)  # the mirror matters here


def test_camera_choices():
    assert {"nyu", "sr305", "azure_kinect", "custom", "file"} <= set(CAMERA_CHOICES)
    assert camera_choice_label("azure_kinect") == "Azure Kinect (640x576/1024x1024)"
    assert (
        camera_spec("sr305", "/x/cam.yaml") == "sr305" and camera_spec("file", "/x/cam.yaml") == "/x/cam.yaml"
    )
    with pytest.raises(ValueError, match="upload a camera file"):
        camera_spec("file", None)


def test_depth_image_is_the_frame_pixel_for_pixel():
    raw = np.zeros((4, 6), np.float32)
    raw[1, 2], raw[2, 3] = 4000.0, 6000.0  # any unit: near bright, far dark, missing black
    grey = np.asarray(depth_image(raw))[..., 0]
    assert grey.shape == (4, 6) and grey[1, 2] == 255 and grey[2, 3] == 40 and grey[0, 0] == 0


def test_preview_shows_the_detectors_choice_a_click_and_what_is_wrong(explorer):
    path = EXAMPLES / "synthetic_nyu_0.png"
    depth = np.asarray(Image.open(path), np.float32)
    detected = detect_center(depth, CAMERAS["nyu"], explorer.crop)
    view = preview_view(explorer, path, "nyu", None, None)
    assert view.image.size == (640, 480)
    assert view.caption == f"detector: u={detected[0]:.0f} px, v={detected[1]:.0f} px, d={detected[2]:.0f} mm"
    pixels = np.asarray(view.image)
    u, v = np.round(detected[:2]).astype(int)
    assert tuple(pixels[v, u]) == PREVIEW_COLOURS["detected"]
    # a click on the hand 8 px left of the detection: marked, with the depth read from the image
    clicked = preview_view(explorer, path, "nyu", None, (u - 8, v, 0))
    assert tuple(np.asarray(clicked.image)[v, u - 8]) == PREVIEW_COLOURS["chosen"]
    assert f"your centre: u={u - 8} px, v={v} px, d=" in clicked.caption
    off_hand = preview_view(explorer, path, "nyu", None, (2, 2, 0))
    assert "your centre: no depth within 7 px" in off_hand.caption
    # a wrong unit or camera is said over the frame, which is still shown
    in_metres = preview_view(explorer, path, "nyu", None, None, "m")
    assert "if this is a frame in mm" in in_metres.caption and in_metres.image.size == (640, 480)
    assert "Kinect v2 camera is 512x424" in preview_view(explorer, path, "kinect_v2", None, None).caption


def test_mesh_view_needs_an_upload(explorer, tmp_path):
    with pytest.raises(ValueError, match="estimate a pose first"):
        mesh_view(explorer, None, tmp_path)


# -- latent tab --------------------------------------------------------------------------------------


def test_latent_view_and_sliders(explorer):
    z = random_latent(explorer, 4)
    view = latent_view(explorer, z)
    go.Figure(view.figure)
    assert len(view.sigmas) == 8 and len(view.raw) == LATENT_DIMS and len(view.named) == 10
    assert view.depth.size[1] == 256 and view.depth.size[0] > 256  # the depth and its colour bar
    assert view.figure["data"][-1]["name"] == "generated depth" and view.neighbours is None
    moved = latent_from_sliders(explorer, z, [2.0] + view.sigmas[1:])
    assert latent_view(explorer, moved).sigmas[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="finite"):
        latent_view(explorer, np.full(LATENT_DIMS, np.nan))
    far = latent_view(
        explorer, explorer.axes.mean + 50 * explorer.axes.sigma[0] * explorer.axes.components[0]
    )
    assert far.sigmas[0] == 3.0
    assert np.all((explorer.axes.low - 1e-4 <= far.raw) & (far.raw <= explorer.axes.high + 1e-4))


# -- walk tab ----------------------------------------------------------------------------------------


def test_named_slider_moves_its_attribute(explorer):
    """On this untrained decoder the edit gets most of the way (tests/test_named_sliders.py holds
    the release model to the exact figures)."""
    z = random_latent(explorer, 1)
    before = latent_view(explorer, z).named
    target = before[2] + 10.0
    moved, note = latent_from_named(explorer, z, "middle curl", target)
    after = latent_view(explorer, moved, note)
    assert after.named[2] == pytest.approx(target, abs=2.0)
    others = np.delete(np.subtract(after.named, before), 2)
    assert np.abs(others).max() < 3.0 and after.readout.startswith("**middle curl**: asked")
    with pytest.raises(ValueError, match="unknown named slider"):
        latent_from_named(explorer, z, "wrist curl", 0.0)


def test_interpolate_and_random_walk(axes):
    a, b = np.zeros(LATENT_DIMS), np.ones(LATENT_DIMS)
    line = interpolate(a, b, 5)
    np.testing.assert_allclose(line[[0, -1]], [a, b])
    np.testing.assert_allclose(np.diff(line, axis=0), 0.25)
    walk = random_walk(axes, axes.mean, 10, np.random.default_rng(3), 0.3, 0.1)
    again = random_walk(axes, axes.mean, 10, np.random.default_rng(3), 0.3, 0.1)
    assert walk.shape == (10, LATENT_DIMS)
    np.testing.assert_array_equal(walk, again)  # same seed, same walk
    np.testing.assert_allclose(walk[0], axes.mean)
    with pytest.raises(ValueError, match="at least 2 steps"):
        interpolate(a, b, 1)


def test_generated_background_and_orthographic_uv():
    out = generated_to_crop(np.array([[0.2, 0.97], [0.96, -0.5]]))
    np.testing.assert_allclose(out, [[0.2, 1.0], [1.0, -0.5]], rtol=1e-6)
    crop = CropConfig(cube_mm=PRESETS["tiny"].cube_mm, crop_px=PRESETS["tiny"].crop_px)
    uv = centered_to_crop_uv(np.array([[0, 0, 0], [125.0, -125.0, 10]]), crop)
    np.testing.assert_allclose(uv, [[15.5, 15.5], [31.5, -0.5]])


def test_write_gif(tmp_path):
    frames = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(4)]
    assert [f.getpixel((0, 0))[0] for f in loop_frames(frames)] == [0, 40, 80, 120, 80, 40]  # seamless loop
    path = write_gif(frames, tmp_path / "w.gif", 50)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 50 and gif.info["loop"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["w.gif"]  # no temporary left
    # the fixed palette keeps the depth colours, the fingers' and the greys
    colours = np.concatenate(
        [
            DEPTH_COLOURS.rgb(np.linspace(0, 1, 50), 0, 1),
            [[0x3C, 0xB4, 0x4B], [0, 0, 0], [255, 255, 255], [128, 128, 128]],
        ]
    ).astype(np.uint8)
    write_gif([Image.fromarray(colours[None])], tmp_path / "c.gif", 50)
    with Image.open(tmp_path / "c.gif") as gif:
        back = np.asarray(gif.convert("RGB"))[0].astype(int)
    assert np.abs(back - colours).max() <= 6


@pytest.mark.parametrize("mode", WALK_MODES)
def test_walk_latents_modes(explorer, mode):
    names = ["synthetic_nyu_0.png", "synthetic_nyu_1.png"]
    uploads = upload_latents(explorer, [EXAMPLES / names[0], EXAMPLES / names[1]], "nyu")
    latents = walk_latents(
        explorer, mode, 6, 0, explorer.axes.mean, names[0], names[1], slider="spread", uploads=uploads
    )
    assert latents.shape == (6, LATENT_DIMS)
    if mode == "two examples":
        np.testing.assert_allclose(
            latents[[0, -1]], [explorer.examples[names[0]], explorer.examples[names[1]]]
        )
    if mode == "two uploaded frames":  # each encoded through the posterior, as the upload tab does
        np.testing.assert_allclose(latents[[0, -1]], uploads, atol=1e-6)
        np.testing.assert_allclose(uploads[0], explorer.examples[names[0]], atol=1e-5)
    if mode == "along a named slider":  # the spread grows (as far as this untrained decoder goes)
        spread = np.array([latent_view(explorer, z).named[5] for z in latents])
        assert np.all(np.diff(spread) > -2.0) and spread[-1] - spread[0] > 20


def test_walk_latents_errors(explorer):
    with pytest.raises(ValueError, match="upload a depth image first"):
        walk_latents(explorer, "uploaded image -> random sample", 6, 0, None, None, None)
    with pytest.raises(ValueError, match="choose two examples"):
        walk_latents(explorer, "two examples", 6, 0, None, "nope.png", None)
    with pytest.raises(ValueError, match="2 to 64 steps"):
        walk_latents(explorer, "random walk", 500, 0, None, None, None)
    with pytest.raises(ValueError, match="unknown walk mode"):
        walk_latents(explorer, "teleport", 6, 0, None, None, None)
    with pytest.raises(ValueError, match="upload two depth frames"):
        walk_latents(explorer, "two uploaded frames", 6, 0, None, None, None)
    with pytest.raises(ValueError, match="upload two depth frames"):
        upload_latents(explorer, [EXAMPLES / "synthetic_nyu_0.png", None], "nyu")
    with pytest.raises(ValueError, match="choose a named slider"):
        walk_latents(explorer, "along a named slider", 6, 0, None, None, None, slider="wrist")


def test_walk_view(explorer, tmp_path):
    latents = walk_latents(explorer, "two random samples", 5, 1, None, None, None)
    view = walk_view(explorer, latents, "gradio_api/file=/p/plotly.min.js")
    assert view.animation_html.startswith("<iframe") and "plotly.min.js" in view.animation_html
    go.Figure(view.smoothness)
    assert len(view.smoothness["data"][0]["x"]) == 4 and min(view.smoothness["data"][0]["y"]) >= 0
    assert "5 steps" in view.summary
    assert "generated depth" in view.animation_html  # the point cloud, updated by each of the 5 frames:
    assert view.animation_html.count("&quot;traces&quot;") == 5
    # the smoothness head's distances from one batch are those of each pair of consecutive crops
    g = view.walk.generated
    pairs = np.linalg.norm(explorer.estimator.smoothness_distance(g[:-1], g[1:]), axis=1)
    np.testing.assert_allclose(view.walk.smoothness_distance, pairs, rtol=1e-4, atol=1e-5)
    with Image.open(walk_gif(explorer, view.walk, tmp_path)) as gif:
        assert gif.n_frames == 8 and gif.size[1] == 256  # 5 steps forth, 3 back
    with pytest.raises(ValueError, match="make a walk first"):
        walk_gif(explorer, None, tmp_path)


def test_walk_figure_shows_the_crops_at_their_size_with_the_2d_skeleton(explorer):
    walk = run_walk(explorer.estimator, walk_latents(explorer, "random walk", 3, 0, None, None, None))
    animation, _ = walk_figures(walk, explorer.convention, explorer.crop, 100)
    go.Figure(animation)
    kinds = [t["type"] for t in animation["data"]]  # a frame's traces update these, in this order
    frame = animation["frames"][1]["data"]
    png = base64.b64decode(frame[kinds.index("image")]["source"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (32, 32)  # the crop's own pixels, enlarged by the browser
    bones = [k for k, kind in enumerate(kinds) if kind == "scatter"]
    assert [animation["data"][k]["name"] for k in bones] == list(FINGERS)
    uv = centered_to_crop_uv(walk.joints_mm[1], explorer.crop)
    assert frame[bones[0]]["x"][0] in np.round(uv[:, 0], 1) and animation["layout"]["yaxis"]["range"] == [
        31.5,
        -0.5,
    ]
