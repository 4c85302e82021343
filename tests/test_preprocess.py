import numpy as np
import pytest

from crossingnets.camera import CAMERAS, Intrinsics, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.preprocess import (
    BACKGROUND,
    CropConfig,
    NoHandError,
    crop_depth,
    crop_to_uvd,
    detect_center,
    norm_to_xyz,
    preprocess,
    uvd_to_crop,
    xyz_to_norm,
)

CAM = CAMERAS["nyu"]
CFG = CropConfig(cube_mm=300.0, crop_px=128)


def box_frame(depth_mm=600.0, rows=(200, 260), cols=(300, 350), background_mm=0.0):
    frame = np.full((CAM.height_px, CAM.width_px), background_mm, np.float32)
    frame[rows[0] : rows[1], cols[0] : cols[1]] = depth_mm
    return frame


def test_uvd_xyz_round_trip(rng):
    uvd = rng.uniform([0, 0, 300], [640, 480, 900], size=(100, 3))
    np.testing.assert_allclose(xyz_to_uvd(uvd_to_xyz(uvd, CAM), CAM), uvd, rtol=0, atol=1e-9)


def test_crop_and_norm_round_trips(rng):
    com = np.array([310.0, 250.0, 650.0])
    uvd = rng.uniform([0, 0, 300], [640, 480, 900], size=(50, 14, 3))
    back = crop_to_uvd(uvd_to_crop(uvd, com, CAM, CFG), com, CAM, CFG)
    np.testing.assert_allclose(back, uvd, atol=1e-9)
    xyz = uvd_to_xyz(uvd, CAM)
    np.testing.assert_allclose(norm_to_xyz(xyz_to_norm(xyz, com, CAM, 300), com, CAM, 300), xyz, atol=1e-9)


def test_centre_maps_to_crop_centre_and_cube_edges_to_borders():
    com = np.array([320.0, 240.0, 600.0])
    centre = uvd_to_crop(com, com, CAM, CFG)
    np.testing.assert_allclose(centre, [63.5, 63.5, 0.0])
    # A point half a cube to the right, at the centre depth, lands on the crop's right border.
    edge_xyz = uvd_to_xyz(com, CAM) + [150.0, 0.0, 150.0]
    edge = uvd_to_crop(xyz_to_uvd(edge_xyz, CAM), com, CAM, CFG)
    assert edge[2] == pytest.approx(1.0)


def test_detect_center_finds_the_nearest_blob():
    frame = box_frame(600.0)
    frame[:, :100] = 1400.0  # a wall far behind: not the hand
    com = detect_center(frame, CAM, CFG)
    np.testing.assert_allclose(com, [324.5, 229.5, 600.0], atol=1e-6)


def test_crop_values_are_normalised_depth_with_background():
    frame = box_frame(640.0)
    com = np.array([324.5, 229.5, 600.0])
    crop = crop_depth(frame, com, CAM, CFG)
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    inside = crop < BACKGROUND
    assert inside.sum() > 100
    np.testing.assert_allclose(crop[inside], (640.0 - 600.0) / 150.0, atol=1e-6)
    # The box covers rows 200..259, cols 300..349: its centre pixel is inside the crop's blob.
    u, v, _ = uvd_to_crop(np.array([324.5, 229.5, 640.0]), com, CAM, CFG)
    assert inside[int(round(v)), int(round(u))]


def test_depth_beyond_the_cube_is_background_and_nearer_is_clipped():
    frame = box_frame(600.0)
    frame[230, 320:330] = 1000.0  # behind the cube
    frame[210, 320:330] = 300.0  # in front of the cube
    crop = preprocess(frame, CAM, CFG, center_uvd=np.array([324.5, 229.5, 600.0])).depth
    assert crop.min() == -1.0 and crop.max() == 1.0


@pytest.mark.parametrize(
    "frame, match",
    [
        (np.zeros((480, 640), np.float32), "no hand"),
        (np.full((480, 640), np.nan, np.float32), "NaN"),
        (np.ones((480, 640, 3), np.float32), "2-D"),
        (-box_frame(), "negative"),
    ],
)
def test_bad_frames_raise_clear_errors(frame, match):
    with pytest.raises(ValueError, match=match):
        preprocess(frame, CAM, CFG)


def test_centre_outside_the_hand_gives_an_empty_crop_error():
    with pytest.raises(NoHandError, match="holds no depth pixel"):
        preprocess(box_frame(), CAM, CFG, center_uvd=np.array([50.0, 50.0, 600.0]))


def test_intrinsics_reject_bad_focal_lengths():
    with pytest.raises(ValueError, match="focal"):
        Intrinsics(0.0, 500.0, 160, 120, 320, 240)


def test_the_depth_range_ends_just_below_max_depth():
    """Pixels nearer than max_depth_mm (2,000 by default) are hand candidates; at it, not."""
    assert CropConfig().max_depth_mm == 2000.0
    com = detect_center(box_frame(1999.5), CAM, CropConfig(cube_mm=300.0, crop_px=64))
    assert com[2] == pytest.approx(1999.5)
    with pytest.raises(NoHandError):
        detect_center(box_frame(2000.0), CAM, CropConfig(cube_mm=300.0, crop_px=64))


@pytest.mark.parametrize(("cube_mm", "crop_px"), [(0.0, 64), (300.0, 0), (-1.0, 64)])
def test_crop_config_needs_a_positive_cube_and_size(cube_mm, crop_px):
    with pytest.raises(ValueError, match="must be positive"):
        CropConfig(cube_mm=cube_mm, crop_px=crop_px)


def test_a_given_centre_needs_a_positive_depth():
    with pytest.raises(ValueError, match=r"finite \(u, v, d\) with d > 0 mm"):
        preprocess(box_frame(), CAM, CFG, np.array([324.5, 229.5, 0.0]))


def test_a_window_of_the_frame_gives_the_frame_s_centre_and_crop():
    """Detection and crop on a window (its origin given) equal those on the whole frame."""
    frame = box_frame(600.0)
    u0, v0 = 250, 150
    window = frame[v0 : v0 + 200, u0 : u0 + 160]
    np.testing.assert_allclose(
        detect_center(window, CAM, CFG, origin_px=(u0, v0)), detect_center(frame, CAM, CFG), atol=1e-9
    )
    whole, part = preprocess(frame, CAM, CFG), preprocess(window, CAM, CFG, origin_px=(u0, v0))
    np.testing.assert_array_equal(part.depth, whole.depth)
    with pytest.raises(ValueError, match="leaves the 640x480 frame"):
        detect_center(window, CAM, CFG, origin_px=(600, v0))


def _hand_rows_and_cols(com: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]):
    """Which crop rows and columns sample a frame pixel of the box (rows, cols): nearest pixel."""
    grid = np.arange(CFG.crop_px, dtype=np.float64)
    src = np.rint(crop_to_uvd(np.stack([grid, grid, np.zeros_like(grid)], axis=-1), com, CAM, CFG))
    return (rows[0] <= src[:, 1]) & (src[:, 1] < rows[1]), (cols[0] <= src[:, 0]) & (src[:, 0] < cols[1])


@pytest.mark.parametrize("corner", ["top-left", "bottom-right"])
def test_windows_reach_the_frame_s_edges_and_crops_read_their_first_and_last_pixels(corner):
    """A hand in a corner of the frame: the window that holds it may touch the frame's edges, and
    the crop samples the frame's first (or last) row and column like any other."""
    h, w = CAM.height_px, CAM.width_px
    rows, cols = ((0, 60), (0, 50)) if corner == "top-left" else ((h - 60, h), (w - 50, w))
    frame = box_frame(600.0, rows, cols)
    v0, u0 = (0, 0) if corner == "top-left" else (h - 80, w - 70)
    whole, part = (
        preprocess(frame, CAM, CFG),
        preprocess(frame[v0 : v0 + 80, u0 : u0 + 70], CAM, CFG, origin_px=(u0, v0)),
    )
    np.testing.assert_array_equal(part.depth, whole.depth)
    np.testing.assert_array_equal(part.com_uvd, whole.com_uvd)
    in_rows, in_cols = _hand_rows_and_cols(whole.com_uvd, rows, cols)
    np.testing.assert_array_equal(whole.depth < BACKGROUND, np.outer(in_rows, in_cols))


def test_a_window_past_an_edge_is_refused_and_a_bad_one_named_a_window():
    window = np.full((80, 70), 600.0, np.float32)
    for origin in ((0, 0), (CAM.width_px - 70, CAM.height_px - 80)):
        detect_center(window, CAM, CFG, origin_px=origin)
    for origin in ((-1, 0), (0, -1), (CAM.width_px - 69, 0), (0, CAM.height_px - 79)):
        with pytest.raises(ValueError, match="leaves the 640x480 frame"):
            detect_center(window, CAM, CFG, origin_px=origin)
    window[3, 4] = np.nan
    with pytest.raises(ValueError, match="depth window"):
        preprocess(window, CAM, CFG, origin_px=(10, 10))
