"""In-plane rotations: crops and joints turn the same way, test-time averaging undoes them, and the
trainer's augmentation turns a crop and its labels together."""

import numpy as np
import pytest
import torch

from crossingnets.camera import get_camera
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import MODELS, model_config
from crossingnets.rotation import rotation_angles_deg, turn_crops, turn_index_maps, turn_points

S = 32


def test_angles_are_odd_counts_centred_on_zero():
    assert rotation_angles_deg(1).tolist() == [0.0]
    assert rotation_angles_deg(5).tolist() == [0.0, 10.0, -10.0, 20.0, -20.0]
    for bad in (0, 2, -1):
        with pytest.raises(ValueError, match="odd count"):
            rotation_angles_deg(bad)


def _blob(row: int, col: int) -> torch.Tensor:
    crop = torch.ones(1, 1, S, S)  # background +1
    crop[0, 0, row, col] = -0.5
    return crop


def _offset(crop: torch.Tensor) -> torch.Tensor:
    """(x, y) px of the one hand pixel from the crop centre, x right and y down as joints are."""
    ((row, col),) = torch.nonzero(crop[0] < 1).tolist()
    return torch.tensor([col - (S - 1) / 2, row - (S - 1) / 2])


def test_a_quarter_turn_moves_a_pixel_where_turn_points_puts_it():
    """90 deg keeps the pixel grid, so nearest sampling is exact: the pixel lands where its point,
    turned by turn_points, says; turning back by -90 returns it; no depth value is invented."""
    crop = _blob(5, 20)
    turned = turn_crops(crop.repeat(2, 1, 1, 1), torch.tensor([0.0, 90.0]))
    torch.testing.assert_close(turned[0], crop[0])
    assert sorted(torch.unique(turned[1]).tolist()) == [-0.5, 1.0]
    point = torch.cat([_offset(crop[0]), torch.tensor([7.0])])[None, None]  # (1, 1, 3)
    moved = turn_points(point, torch.tensor([90.0]))[0, 0]
    torch.testing.assert_close(moved[:2], _offset(turned[1]), atol=1e-5, rtol=0)
    assert not torch.allclose(moved[:2], point[0, 0, :2])  # it moved
    assert moved[2] == 7.0  # depth is not turned
    back = turn_points(moved[None, None], torch.tensor([-90.0]))[0, 0]
    torch.testing.assert_close(back, point[0, 0], atol=1e-5, rtol=0)


def test_corners_turned_in_from_outside_are_background():
    turned = turn_crops(-torch.ones(1, 1, S, S), torch.tensor([45.0]))[0, 0]
    assert turned[0, 0] == 1.0 and turned[S // 2, S // 2] == -1.0


def _mean_offset(crop: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(crop[0] < 1)
    return np.array([cols.mean() - (S - 1) / 2, rows.mean() - (S - 1) / 2])


class _Centroid:
    """A stand-in network: the 'joint' is the hand pixels' centroid in px from the crop centre."""

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        joints = np.stack([np.r_[_mean_offset(c), 0.0][None] for c in crops]).astype(np.float32)
        return joints, np.arange(len(crops), dtype=np.float32)[:, None]


def test_the_estimator_averages_turned_estimates_in_the_unturned_frame():
    """With a network that reads the hand's centroid, every turned estimate turned back agrees
    with the unturned one (to the pixel grid), so the average does too; the latent is the
    unturned crop's; a wrong sign anywhere would move the average by ~10 px."""
    crop = np.ones((1, 1, S, S), np.float32)
    crop[0, 0, 4:10, 18:26] = -0.3  # an off-centre hand
    est = HandPoseEstimator(MODELS["crossingnet"](model_config("tiny")), rotations=9)
    est.network = _Centroid()  # the cached property, replaced
    center = np.array([[320.0, 240.0, 500.0]])
    one = est.predict_crops(crop, center, get_camera("nyu"), rotate=False)
    nine = est.predict_crops(crop, center, get_camera("nyu"))
    assert np.abs(one.joints_xyz_mm).max() > 0
    np.testing.assert_allclose(nine.joints_xyz_mm, one.joints_xyz_mm, atol=0.5)
    assert nine.latent.tolist() == [[0.0]]


def test_index_maps_gather_exactly_what_turn_crops_samples() -> None:
    """Inference turns crops by fixed angles as a gather; it must be the same pixels, bit for bit."""
    crops = torch.rand(3, 1, S, S) * 2 - 1
    angles = rotation_angles_deg(9)
    maps = turn_index_maps(S, angles)
    flat = crops.reshape(3, S * S).numpy()
    for k, angle in enumerate(angles):
        gathered = np.where(maps[k] >= 0, flat[:, np.maximum(maps[k], 0)], 1.0).reshape(3, 1, S, S)
        expected = turn_crops(crops, torch.full((3,), float(angle)))
        np.testing.assert_array_equal(gathered.astype(np.float32), expected.numpy())
    assert (maps[0] == np.arange(S * S)).all() and (maps[1:] == -1).any()  # 0 deg: identity
