"""Capsule ray casting against closed-form depths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.render import Background, render, render_depth

NYU = CAMERAS["nyu"]


def capsules(*specs: tuple[tuple[float, float, float], tuple[float, float, float], float]) -> Capsules:
    """One frame from (start, end, radius) triples, mm."""
    start, end, radius = zip(*specs, strict=True)
    return Capsules(
        np.array([start], np.float32), np.array([end], np.float32), np.array([radius], np.float32)
    )


def ray(u: float, v: float, cam: Intrinsics) -> np.ndarray:
    """Pixel ray direction with unit z, so the ray parameter is the depth."""
    return np.array([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0])


def sphere_depth(centre: np.ndarray, r: float, d: np.ndarray) -> float:
    """Nearest t with |t d - centre| = r, or 0 on a miss."""
    b, dd = d @ centre, d @ d
    h = b * b - dd * (centre @ centre - r * r)
    return 0.0 if h < 0 else (b - math.sqrt(h)) / dd


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_shape_dtype_and_empty_background(name: str) -> None:
    cam = CAMERAS[name]
    caps = capsules(((0, 0, 500), (0, 0, 500), 20))
    out = render(caps, cam)
    assert out.depth_mm.shape == (1, cam.height_px, cam.width_px) == out.cos_view.shape
    assert out.depth_mm.dtype == np.float32
    u0, v0, u1, v1 = out.hand_box_px[0]
    inside = np.zeros(out.depth_mm.shape[1:], bool)
    inside[v0:v1, u0:u1] = True
    assert (out.depth_mm[0][~inside] == 0).all()
    assert (out.depth_mm[0] > 0).sum() > 0
    assert out.depth_mm[0, 0, 0] == 0  # far corner: background stays 0


def test_sphere_centre_and_area() -> None:
    z, r = 500.0, 20.0
    depth = render_depth(capsules(((0, 0, z), (0, 0, z), r)), NYU)[0]
    assert depth[240, 320] == pytest.approx(z - r, abs=1e-3)
    # Silhouette: a circle of radius ~ f * r / sqrt(z^2 - r^2) pixels.
    expected = math.pi * (NYU.fx * r / math.sqrt(z * z - r * r)) * (NYU.fy * r / math.sqrt(z * z - r * r))
    assert (depth > 0).sum() == pytest.approx(expected, rel=0.02)
    v, u = np.nonzero(depth)
    for uu, vv in zip(u[::37], v[::37], strict=False):
        assert depth[vv, uu] == pytest.approx(
            sphere_depth(np.array([0, 0, z]), r, ray(uu, vv, NYU)), abs=1e-3
        )


def test_capsule_parallel_to_image_plane() -> None:
    """Along x at depth z: on the axis row depth is z - r, across it the circle section."""
    z, r = 600.0, 15.0
    depth = render_depth(capsules(((-50, 0, z), (50, 0, z), r)), NYU)[0]
    u_half = 50 * NYU.fx / z
    assert np.allclose(depth[240, int(320 - u_half) + 1 : int(320 + u_half)], z - r, atol=1e-3)
    for v in range(230, 251):
        dy = (v - NYU.cy) / NYU.fy  # circle y^2 + (t - z)^2 = r^2 with y = t dy
        a, b, c = 1 + dy * dy, -2 * z, z * z - r * r
        t = (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
        assert depth[v, 320] == pytest.approx(t, abs=1e-3)


def test_capsule_pointing_at_camera_shows_its_near_cap() -> None:
    caps = capsules(((0, 0, 700), (0, 0, 400), 10))
    depth = render_depth(caps, NYU)[0]
    assert depth[240, 320] == pytest.approx(390.0, abs=1e-3)
    assert (depth > 0).sum() == pytest.approx(
        math.pi * (NYU.fx * 10 / math.sqrt(400**2 - 100)) ** 2, rel=0.03
    )


def test_z_buffer_keeps_the_nearest_of_two_capsules() -> None:
    near = ((-40, -5, 500), (40, 5, 500), 12)
    far = ((0, -40, 520), (0, 40, 530), 15)
    both = render_depth(capsules(near, far), NYU)[0]
    a = render_depth(capsules(near), NYU)[0]
    b = render_depth(capsules(far), NYU)[0]
    overlap = (a > 0) & (b > 0)
    assert overlap.sum() > 100
    expected = np.where(a > 0, a, b)
    expected[overlap] = np.minimum(a, b)[overlap]
    np.testing.assert_allclose(both, expected, atol=1e-4)
    assert (both[overlap] < b[overlap]).any()  # the far capsule is really hidden there


def test_cos_view_is_one_facing_and_small_at_rims() -> None:
    out = render(capsules(((0, 0, 500), (0, 0, 500), 30)), NYU)
    cos = out.cos_view[0]
    assert cos[240, 320] == pytest.approx(1.0, abs=1e-3)
    hit = out.depth_mm[0] > 0
    assert cos[hit].min() < 0.2 and cos[hit].max() <= 1.0 + 1e-6 and cos[hit].min() >= 0.0


def test_batch_frames_are_independent() -> None:
    one = capsules(((0, 0, 500), (30, 20, 520), 12))
    two = capsules(((-60, 10, 700), (-20, 50, 650), 9))
    batch = Capsules(*(np.concatenate([a, b]) for a, b in zip(one, two, strict=True)))
    out = render_depth(batch, NYU)
    np.testing.assert_array_equal(out[0], render_depth(one, NYU)[0])
    np.testing.assert_array_equal(out[1], render_depth(two, NYU)[0])


def test_background_plane_and_ellipsoid_behind_the_hand() -> None:
    caps = capsules(((0, 0, 500), (0, 0, 500), 20))
    plane = Background(
        np.array([[[0.0, 0.0, 900.0]]]),  # a sphere of radius 50 on the optical axis, in front of the wall
        np.array([[[50.0, 50.0, 50.0]]]),
        np.array([[[0.0, 0.0, 1.0]]]),  # the wall z = 1000
        np.array([[1000.0]]),
    )
    out = render(caps, NYU, plane, background_margin_mm=100.0)
    depth = out.depth_mm[0]
    assert depth[240, 320] == pytest.approx(480.0, abs=1e-3)  # hand in front of everything
    u = 320 + int(45 * NYU.fx / 900)  # beside the hand, on the ball
    assert depth[240, u] == pytest.approx(
        sphere_depth(np.array([0, 0, 900.0]), 50, ray(u, 240, NYU)), abs=1e-3
    )
    u0, v0, u1, v1 = out.roi_px[0]
    assert depth[v0, u0] == pytest.approx(1000.0, abs=1e-3) and depth[v1 - 1, u1 - 1] == pytest.approx(1000.0)
    assert out.cos_view[0, v0, u0] == pytest.approx(1 / np.linalg.norm(ray(u0, v0, NYU)), abs=1e-5)
    assert (depth[:, :u0] == 0).all() and (depth[:v0] == 0).all()  # drawn only around the hand
    # The window: the hand's box grown by 100 mm at the hand's nearest depth (480 mm).
    assert u1 - u0 == pytest.approx(2 * (20 + 100) * NYU.fx / 480, abs=4)
    full = render(caps, NYU, plane, background_margin_mm=math.inf).depth_mm[0]
    assert (full > 0).all()


@pytest.mark.parametrize(
    "bad, match",
    [
        (Capsules(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), np.zeros((1, 2))), "radii must be > 0"),
        (Capsules(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)), np.ones((1, 2))), r"\(B, K, 3\)"),
        (Capsules(np.full((1, 1, 3), np.nan), np.zeros((1, 1, 3)), np.ones((1, 1))), "NaN"),
    ],
)
def test_bad_capsules_raise(bad: Capsules, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render_depth(bad, NYU)


def test_surfaces_out_of_sight_are_skipped_and_grow_no_window() -> None:
    """Absent surfaces are encoded behind the camera; they must neither draw nor widen the window."""
    caps = capsules(((0, 0, 500), (0, 0, 500), 20))
    hidden = Background(
        np.array([[[0.0, 0.0, -1e6]]]), np.array([[[200.0, 300.0, 100.0]]]),
        np.array([[[0.0, 0.0, 1.0]]]), np.array([[-1.0]]),
    )  # fmt: skip
    out = render(caps, NYU, hidden)
    bare = render(caps, NYU)
    np.testing.assert_array_equal(out.roi_px, bare.hand_box_px)
    np.testing.assert_array_equal(out.depth_mm, bare.depth_mm)
    with pytest.raises(ValueError, match="unit vectors"):
        render(caps, NYU, hidden._replace(plane_normal=np.array([[[0.0, 0.0, 2.0]]])))
