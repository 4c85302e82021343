"""A hand centre given by the user is where the crop is taken: through the estimator's file path
and the explorer's upload tab, with a centre away from the detected one (a centre passed back
equal to the detected one would prove nothing)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from crossingnets.camera import CAMERAS
from crossingnets.checkpoint import LatentStats
from crossingnets.data.depth_file import load_depth
from crossingnets.data.preprocess import preprocess
from crossingnets.explorer import upload
from crossingnets.explorer.space import Explorer
from crossingnets.explorer.upload import estimate_pose, upload_view
from crossingnets.models import PRESETS, CrossingNet

EXAMPLE = Path(__file__).resolve().parents[1] / "app" / "examples" / "synthetic_nyu_0.png"
CAM = CAMERAS["nyu"]
SHIFT = np.array([6.0, -4.0, 25.0])  # px, px, mm: a few crop pixels and a tenth of the cube away


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Explorer:
    torch.manual_seed(0)
    latents = np.random.default_rng(0).standard_normal((64, PRESETS["tiny"].latent_dims))
    folder = tmp_path_factory.mktemp("tiny")
    CrossingNet(PRESETS["tiny"]).save_pretrained(folder, latent_stats=LatentStats.fit(latents))
    return Explorer.load(folder, None)


def test_estimate_pose_crops_around_the_given_centre(explorer: Explorer) -> None:
    est, depth = explorer.estimator, load_depth(EXAMPLE)
    detected = estimate_pose(est, EXAMPLE, "nyu").prediction
    center = detected.center_uvd + SHIFT
    given = estimate_pose(est, EXAMPLE, "nyu", center=tuple(center)).prediction
    np.testing.assert_allclose(given.center_uvd, center)
    np.testing.assert_array_equal(given.crop, preprocess(depth, CAM, est.crop, center).depth)
    assert not np.array_equal(given.crop, detected.crop)
    # the estimate is the network's on that crop, placed about that centre
    direct = est.predict(depth, CAM, center_uvd=center)
    np.testing.assert_allclose(given.joints_xyz_mm, direct.joints_xyz_mm, atol=1e-4)
    assert np.abs(given.joints_xyz_mm - detected.joints_xyz_mm).max() > 1.0


def test_a_centre_without_depth_takes_the_frame_depth_there(explorer: Explorer) -> None:
    depth = load_depth(EXAMPLE)
    u, v = np.argwhere(depth > 0)[len(np.argwhere(depth > 0)) // 3][::-1]  # a hand pixel
    given = estimate_pose(explorer.estimator, EXAMPLE, "nyu", center=(float(u), float(v), 0.0)).prediction
    assert tuple(given.center_uvd[:2]) == (u, v)
    patch = depth[v - 7 : v + 8, u - 7 : u + 8]
    assert patch[patch > 0].min() <= given.center_uvd[2] <= patch[patch > 0].max()
    np.testing.assert_array_equal(given.crop, preprocess(depth, CAM, explorer.crop, given.center_uvd).depth)


def test_upload_tab_shows_and_writes_the_given_centre(explorer: Explorer, tmp_path: Path) -> None:
    for name in "ab":  # the app makes a fresh folder per request
        (tmp_path / name).mkdir()
    detected = upload_view(explorer, EXAMPLE, "nyu", None, None, tmp_path / "a")
    center = json.loads(detected.files[0].read_text())["com_uvd"] + SHIFT
    view = upload_view(explorer, EXAMPLE, "nyu", None, tuple(center), tmp_path / "b")
    u, v, d = center
    assert f"hand centre u={u:.0f} px, v={v:.0f} px, d={d:.0f} mm" in view.summary
    np.testing.assert_allclose(json.loads(view.files[0].read_text())["com_uvd"], center, atol=1e-3)
    assert np.asarray(view.overlay).tolist() != np.asarray(detected.overlay).tolist()
    assert not np.allclose(view.joints_xyz_mm, detected.joints_xyz_mm, atol=1.0)


def test_upload_summary_gives_the_calls_latency_in_milliseconds(
    explorer: Explorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary's figure is the call's seconds x 1000, as the JSON record has it."""
    timed = upload.estimate_pose
    monkeypatch.setattr(upload, "estimate_pose", lambda *a, **k: replace(timed(*a, **k), seconds=2.5))
    view = upload_view(explorer, EXAMPLE, "nyu", None, None, tmp_path)
    assert view.summary.startswith("**2500.0 ms** server side")
    assert json.loads(view.files[0].read_text())["latency_ms"] == 2500.0
