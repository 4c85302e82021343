"""The explorer on a tiny initialised Crossing Net: its latent space, then each tab's functions and view."""

from __future__ import annotations

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
from crossingnets.data.preprocess import CropConfig, NoHandError
from crossingnets.explorer.figures import generated_to_crop
from crossingnets.explorer.latent import latent_from_sliders, latent_view, random_latent
from crossingnets.explorer.space import Explorer, LatentAxes
from crossingnets.explorer.upload import (
    estimate_pose,
    mesh_view,
    pose_csv,
    pose_record,
    upload_view,
    write_pose_mesh,
)
from crossingnets.explorer.walk import (
    WALK_MODES,
    centered_to_crop_uv,
    interpolate,
    random_walk,
    walk_latents,
    walk_view,
    write_gif,
)
from crossingnets.hand.conventions import get_convention
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
    assert set(explorer.examples) == {p.name for p in EXAMPLES.iterdir()}
    assert len(explorer.labels) == 8 and explorer.labels[0].startswith("PC1 (")
    assert all("mm" in label for label in explorer.labels)


def test_explorer_needs_latent_stats(tmp_path):
    folder = CrossingNet(PRESETS["tiny"]).save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match="no latent statistics"):
        Explorer.load(folder, None)


def test_explorer_needs_a_crossing_net(tmp_path):
    folder = ScratchRegressor(PRESETS["tiny"]).save_pretrained(tmp_path / "scratch")
    with pytest.raises(ValueError, match="'scratch' baseline"):
        Explorer.load(folder, None)


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
    assert view.overlay.size == view.generated.size == (256, 256)
    go.Figure(view.figure)
    assert " ms** server side" in view.summary
    assert [f.name for f in view.files] == ["joints.json", "joints.csv"] and all(
        f.is_file() for f in view.files
    )
    assert view.latent.shape == (LATENT_DIMS,) and view.joints_xyz_mm.shape == (14, 3)


def test_mesh_view_needs_an_upload(explorer, tmp_path):
    with pytest.raises(ValueError, match="estimate a pose first"):
        mesh_view(explorer, None, tmp_path)


# -- latent tab --------------------------------------------------------------------------------------


def test_latent_view_and_sliders(explorer):
    z = random_latent(explorer, 4)
    view = latent_view(explorer, z)
    go.Figure(view.figure)
    assert len(view.sigmas) == 8 and len(view.raw) == LATENT_DIMS and view.depth.size == (256, 256)
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
    path = write_gif(frames, tmp_path / "w.gif", 50)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 50
    assert [p.name for p in tmp_path.iterdir()] == ["w.gif"]  # no temporary left


@pytest.mark.parametrize("mode", WALK_MODES)
def test_walk_latents_modes(explorer, mode):
    names = sorted(explorer.examples)
    latents = walk_latents(explorer, mode, 6, 0, explorer.axes.mean, names[0], names[1])
    assert latents.shape == (6, LATENT_DIMS)
    if mode == "two examples":
        np.testing.assert_allclose(
            latents[[0, -1]], [explorer.examples[names[0]], explorer.examples[names[1]]]
        )


def test_walk_latents_errors(explorer):
    with pytest.raises(ValueError, match="upload a depth image first"):
        walk_latents(explorer, "uploaded image -> random sample", 6, 0, None, None, None)
    with pytest.raises(ValueError, match="choose two examples"):
        walk_latents(explorer, "two examples", 6, 0, None, "nope.png", None)
    with pytest.raises(ValueError, match="2 to 64 steps"):
        walk_latents(explorer, "random walk", 500, 0, None, None, None)
    with pytest.raises(ValueError, match="unknown walk mode"):
        walk_latents(explorer, "teleport", 6, 0, None, None, None)


def test_walk_view(explorer, tmp_path):
    latents = walk_latents(explorer, "two random samples", 5, 1, None, None, None)
    view = walk_view(explorer, latents, tmp_path, "gradio_api/file=/p/plotly.min.js")
    assert view.animation_html.startswith("<iframe") and "plotly.min.js" in view.animation_html
    go.Figure(view.smoothness)
    assert len(view.smoothness["data"][0]["x"]) == 4 and min(view.smoothness["data"][0]["y"]) >= 0
    with Image.open(view.gif) as gif:
        assert gif.n_frames == 5
    assert "5 steps" in view.summary
