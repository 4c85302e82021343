"""Where things land in a crop, against hand-computed positions: a frame with a few asymmetric
markers, a camera with fx != fy and a centre away from the principal point, so that a crop
sampled one pixel off its labels, a transposed crop or a flipped v axis each move a marker."""

from __future__ import annotations

import numpy as np
import pytest

from crossingnets.camera import Intrinsics, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.preprocess import (
    BACKGROUND,
    CropConfig,
    crop_to_uvd,
    norm_to_xyz,
    preprocess,
    uvd_to_crop,
    xyz_to_norm,
)

# fx != fy by 30 %, so swapping the axes or their scales is visible.
CAM = Intrinsics(fx=500.0, fy=350.0, cx=150.0, cy=110.0, width_px=320, height_px=240)
CFG = CropConfig(cube_mm=200.0, crop_px=32)
COM = np.array([170.0, 100.0, 500.0])  # off the principal point; the cube fits inside the frame
# At d = 500 mm the 200 mm cube spans 200 * fx / 500 = 200 px in u and 140 px in v, so one crop
# pixel is 200 / 32 = 6.25 frame px wide and 140 / 32 = 4.375 frame px high.
STEP_U, STEP_V = 6.25, 4.375
# (crop row, crop column, depth mm) of each marker; no two share a row or a column, none lies on
# a diagonal, and none is its own mirror image.
MARKERS = [(5, 20, 480.0), (25, 9, 520.0), (12, 28, 450.0)]


def marker_uvd(row: int, col: int, depth_mm: float) -> np.ndarray:
    """Frame uvd of the centre of crop pixel (row, col), written out from the crop's definition:
    crop pixel centres are at integer indices, the crop centre (S - 1) / 2 sits on COM."""
    half = (CFG.crop_px - 1) / 2
    return np.array([COM[0] + (col - half) * STEP_U, COM[1] + (row - half) * STEP_V, depth_mm])


def marker_frame() -> np.ndarray:
    """A frame that is empty but for the markers: each a 5 x 3 px block around the frame point a
    crop pixel samples, smaller than the crop's pixel pitch, so exactly one crop pixel shows it."""
    frame = np.zeros((CAM.height_px, CAM.width_px), np.float32)
    for row, col, depth in MARKERS:
        u, v, _ = np.rint(marker_uvd(row, col, depth)).astype(int)
        frame[v - 1 : v + 2, u - 2 : u + 3] = depth
    return frame


def test_hand_computed_pitch_matches_the_camera() -> None:
    assert STEP_U == CFG.cube_mm * CAM.fx / COM[2] / CFG.crop_px
    assert STEP_V == CFG.cube_mm * CAM.fy / COM[2] / CFG.crop_px


def test_each_marker_lands_on_its_crop_pixel() -> None:
    crop = preprocess(marker_frame(), CAM, CFG, center_uvd=COM).depth
    expected = np.full((CFG.crop_px, CFG.crop_px), BACKGROUND, np.float32)
    for row, col, depth in MARKERS:
        expected[row, col] = (depth - COM[2]) / (0.5 * CFG.cube_mm)
    found = {(int(r), int(c)) for r, c in zip(*np.nonzero(crop < BACKGROUND), strict=True)}
    assert found == {(r, c) for r, c, _ in MARKERS}
    np.testing.assert_allclose(crop, expected, rtol=0, atol=1e-6)


def test_labels_map_onto_the_pixels_that_show_them() -> None:
    """A joint labelled at a marker's frame uvd maps to that marker's crop pixel and depth, in the
    crop's own coordinates, and the crop holds the marker's depth there."""
    crop = preprocess(marker_frame(), CAM, CFG, center_uvd=COM).depth
    for row, col, depth in MARKERS:
        uvd = marker_uvd(row, col, depth)
        crop_uvd = uvd_to_crop(uvd, COM, CAM, CFG)
        np.testing.assert_allclose(crop_uvd, [col, row, (depth - COM[2]) / 100.0], rtol=0, atol=1e-9)
        u, v = np.rint(crop_uvd[:2]).astype(int)
        assert crop[v, u] == pytest.approx(crop_uvd[2], abs=1e-6)
        np.testing.assert_allclose(crop_to_uvd(crop_uvd, COM, CAM, CFG), uvd, rtol=0, atol=1e-9)


def test_xyz_lift_and_normalised_frame_by_hand() -> None:
    """x right and y down in mm, scaled by their own focal length; norm = offset / half cube."""
    row, col, depth = MARKERS[0]
    uvd = marker_uvd(row, col, depth)
    xyz = uvd_to_xyz(uvd, CAM)
    hand = [(uvd[0] - 150.0) * depth / 500.0, (uvd[1] - 110.0) * depth / 350.0, depth]
    np.testing.assert_allclose(xyz, hand, rtol=0, atol=1e-9)
    np.testing.assert_allclose(xyz_to_uvd(xyz, CAM), uvd, rtol=0, atol=1e-9)
    center_xyz = [(170.0 - 150.0) * 500.0 / 500.0, (100.0 - 110.0) * 500.0 / 350.0, 500.0]
    norm = xyz_to_norm(xyz, COM, CAM, CFG.cube_mm)
    np.testing.assert_allclose(norm, (np.array(hand) - center_xyz) / 100.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(norm_to_xyz(norm, COM, CAM, CFG.cube_mm), xyz, rtol=0, atol=1e-9)


def test_uvd_crop_round_trips_with_unequal_focal_lengths(rng: np.random.Generator) -> None:
    uvd = rng.uniform([0, 0, 300], [320, 240, 900], size=(40, 16, 3))
    for com in (COM, np.array([90.0, 170.0, 750.0])):
        np.testing.assert_allclose(
            crop_to_uvd(uvd_to_crop(uvd, com, CAM, CFG), com, CAM, CFG), uvd, atol=1e-9
        )
        crop_uvd = rng.uniform([-5, -5, -1], [37, 37, 1], size=(40, 3))
        np.testing.assert_allclose(
            uvd_to_crop(crop_to_uvd(crop_uvd, com, CAM, CFG), com, CAM, CFG), crop_uvd, atol=1e-9
        )
