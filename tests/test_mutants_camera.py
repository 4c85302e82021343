"""The pinhole lift against hand-computed values, and the refusals of a camera at the edges: round
trips (uvd -> xyz -> uvd) cannot see a mistake made the same way in both directions, such as
swapped focal lengths or a principal point added instead of subtracted (`benchmarks/mutation.py`,
module camera)."""

from __future__ import annotations

import numpy as np
import pytest

from crossingnets.camera import Intrinsics, uvd_to_xyz, xyz_to_uvd

CAM = Intrinsics(500.0, 400.0, 320.0, 240.0, 640, 480)  # distinct fx, fy, cx, cy
# (u, v, d) -> (x, y, z): x = (u - cx) d / fx, y = (v - cy) d / fy, worked by hand.
PAIRS = [
    ((420.0, 140.0, 1000.0), (200.0, -250.0, 1000.0)),
    ((320.0, 240.0, 700.0), (0.0, 0.0, 700.0)),  # the principal point is on the optical axis
    ((0.0, 480.0, 250.0), (-160.0, 150.0, 250.0)),
]


@pytest.mark.parametrize(("uvd", "xyz"), PAIRS)
def test_the_lift_and_the_projection_by_hand(uvd, xyz):
    np.testing.assert_allclose(uvd_to_xyz(np.array(uvd), CAM), xyz, rtol=0, atol=1e-9)
    np.testing.assert_allclose(xyz_to_uvd(np.array(xyz), CAM), uvd, rtol=0, atol=1e-9)


def test_batches_keep_their_shape():
    uvd = np.array([p[0] for p in PAIRS] * 2).reshape(2, 3, 3)
    xyz = uvd_to_xyz(uvd, CAM)
    assert xyz.shape == (2, 3, 3) and xyz.dtype == np.float64
    np.testing.assert_allclose(xyz[1, 0], PAIRS[0][1], atol=1e-9)
    back = xyz_to_uvd(np.array([p[1] for p in PAIRS] * 2).reshape(2, 3, 3), CAM)
    assert back.shape == (2, 3, 3)
    np.testing.assert_allclose(back, uvd, atol=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 400.0, 320.0, 240.0, 640, 480), "focal lengths must be finite and > 0"),
        ((500.0, 0.0, 320.0, 240.0, 640, 480), "focal lengths must be finite and > 0"),
        ((500.0, 400.0, float("nan"), 240.0, 640, 480), "must be finite"),
        ((500.0, 400.0, 320.0, float("inf"), 640, 480), "must be finite"),
        ((500.0, 400.0, 320.0, 240.0, 0, 480), "size must be positive"),
        ((500.0, 400.0, 320.0, 240.0, 640, 0), "size must be positive"),
    ],
    ids=["fx_0", "fy_0", "cx_nan", "cy_inf", "width_0", "height_0"],
)
def test_a_camera_at_the_edge_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        Intrinsics(*args)


def test_the_smallest_camera_is_accepted():
    cam = Intrinsics(1e-6, 1e-6, -5.0, 1e6, 1, 1)  # any finite principal point, any positive size
    assert (cam.width_px, cam.height_px) == (1, 1)
