"""The second renderer (benchmarks/second_renderer.py), a held-out test instrument: its frames must be
valid depth, show the hand in front of everything else, cover every labelled joint, repeat per seed,
and reach the two stores through the shared preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_scripts import load_script

from crossingnets.camera import Intrinsics, get_camera, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.store import load_arrays, read_info
from crossingnets.files import write_uvd_text

HALF_NYU = Intrinsics(294.015, 293.535, 160.0, 120.0, 320, 240)  # NYU's Kinect at half resolution

# An open right hand, palm to the camera, fingers up, in the renderer's palm frame (ulnar, distal,
# palmar mm from the palm joint; close to NYU's median label geometry), NYU joint order.
OPEN_HAND_PALM_MM = np.array([
    (40, 75, 5), (33, 45, 2), (22, 105, 5), (18, 65, 2), (0, 115, 5), (-3, 75, 2),
    (-30, 105, 5), (-28, 70, 2), (-75, 30, 20), (-62, 10, 15), (-45, -15, 10),
    (14.6, -65.7, 0), (-14.6, -65.7, 0), (0, 0, 0),
], dtype=np.float64)  # fmt: skip


@pytest.fixture(scope="module")
def sr():
    return load_script("second_renderer")


def open_hand_xyz(depth_mm: float = 800.0) -> np.ndarray:
    """(14, 3) camera mm: ulnar -> -x, distal -> -y (up), palmar -> -z (towards the camera)."""
    return OPEN_HAND_PALM_MM * [-1.0, -1.0, -1.0] + [0.0, 0.0, depth_mm]


def test_frame_valid_hand_in_front_and_joints_inside(sr):
    cfg = sr.SecondRendererConfig(wall_prob=1.0)  # a wall behind, so "in front" is tested
    for seed in range(3):
        f = sr.render_frame(open_hand_xyz(), sr.frame_rng(seed, 0), HALF_NYU, cfg)
        assert f.depth_mm.shape == (240, 320) and f.depth_mm.dtype == np.float32
        assert np.isfinite(f.depth_mm).all() and (f.depth_mm >= 0).all()
        uvd = xyz_to_uvd(f.joints_xyz, HALF_NYU)
        u, v = np.rint(uvd[:, 0]).astype(int), np.rint(uvd[:, 1]).astype(int)
        assert ((u >= 0) & (u < 320) & (v >= 0) & (v < 240)).all()
        # Each joint lies inside the mesh: the ray through it hits the hand, no farther than it.
        hit = f.hand_mm[v, u]
        assert (hit > 0).all() and (hit <= uvd[:, 2] + 0.5).all()
        # Everything measured that is not hand or forearm lies behind every joint.
        background = (f.depth_mm > 0) & (f.hand_mm == 0)
        assert background.any() and f.depth_mm[background].min() > uvd[:, 2].max()


def test_same_seed_same_frame(sr):
    cam, cfg = HALF_NYU, sr.SecondRendererConfig()
    a, b = (sr.render_frame(open_hand_xyz(), sr.frame_rng(7, 3), cam, cfg) for _ in range(2))
    c = sr.render_frame(open_hand_xyz(), sr.frame_rng(8, 3), cam, cfg)
    np.testing.assert_array_equal(a.depth_mm, b.depth_mm)
    np.testing.assert_array_equal(a.joints_xyz, b.joints_xyz)
    assert not np.array_equal(a.depth_mm, c.depth_mm)


def test_main_writes_two_stores_of_the_same_frames(sr, tmp_path):
    cam = get_camera("nyu")
    labels = tmp_path / "labels.txt"
    write_uvd_text(labels, xyz_to_uvd(np.stack([open_hand_xyz(d) for d in (700, 850, 1000)]), cam))
    args = sr.get_args_parser().parse_args(
        ["-n", "2", "--labels", str(labels), "--out-dir", str(tmp_path), "--crop-px", "16"]
    )
    report = sr.main(args)
    assert report["frames"] == 2
    stores = {c: load_arrays(tmp_path / f"second_renderer_{c}.h5") for c in ("detect", "labels")}
    info = read_info(tmp_path / "second_renderer_labels.h5")
    assert info.camera == cam and info.crop.crop_px == 16 and info.attrs["center"] == "labels"
    np.testing.assert_array_equal(stores["detect"]["joints_xyz"], stores["labels"]["joints_xyz"])
    # The labels' centre is the project's: the joints' mean in xyz, projected.
    mean_xyz = stores["labels"]["joints_xyz"].astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(uvd_to_xyz(stores["labels"]["com_uvd"], cam), mean_xyz, atol=1e-3)
    assert (stores["detect"]["depth"] < 1).any(axis=(1, 2, 3)).all()  # a hand in every crop
