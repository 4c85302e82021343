"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from crossingnets.camera import Intrinsics, xyz_to_uvd
from crossingnets.metrics import (
    SUCCESS_THRESHOLDS_MM,
    joint_errors_from_uvd,
    joint_errors_mm,
    mean_error_mm,
    per_joint_error_mm,
    success_rate,
    summarize,
)


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """Two frames, two joints; errors (frame 0: 5, 0 mm; frame 1: 13, 10 mm)."""
    gt = np.zeros((2, 2, 3)) + [0.0, 0.0, 500.0]
    pred = gt.copy()
    pred[0, 0] += [3.0, 4.0, 0.0]
    pred[1, 0] += [5.0, 0.0, 12.0]
    pred[1, 1] += [0.0, -6.0, 8.0]
    return pred, gt


def test_joint_errors_by_hand():
    pred, gt = _pair()
    errors = joint_errors_mm(pred, gt)
    np.testing.assert_allclose(errors, [[5.0, 0.0], [13.0, 10.0]])
    assert mean_error_mm(errors) == pytest.approx(7.0)
    np.testing.assert_allclose(per_joint_error_mm(errors), [9.0, 5.0])


def test_success_rate_counts_worst_joint_inclusive():
    errors = np.array([[5.0, 0.0], [13.0, 10.0]])  # worst joints: 5 and 13 mm
    np.testing.assert_allclose(
        success_rate(errors, np.array([0.0, 4.9, 5.0, 12.0, 13.0])), [0, 0, 0.5, 0.5, 1]
    )


def test_summarize_uses_0_to_80_mm_and_names_joints():
    s = summarize(np.array([[5.0, 0.0], [13.0, 10.0]]))
    np.testing.assert_array_equal(s.thresholds_mm, np.arange(81.0))
    assert s.num_frames == 2 and s.mean_error_mm == pytest.approx(7.0)
    d = s.to_dict(("a", "b"))
    assert d["per_joint_error_mm"] == {"a": 9.0, "b": 5.0}
    assert d["success_rate"]["fraction_of_frames"][13] == 1.0
    assert len(SUCCESS_THRESHOLDS_MM) == 81
    with pytest.raises(ValueError, match="joint names"):
        s.to_dict(("a",))


def test_uvd_errors_do_not_depend_on_the_sign_of_fy(rng):
    gt_xyz = rng.uniform([-100, -100, 600], [100, 100, 900], size=(4, 3, 3))
    pred_xyz = gt_xyz + rng.normal(0, 10, size=gt_xyz.shape)
    cam = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)
    expected = joint_errors_mm(pred_xyz, gt_xyz)
    got = joint_errors_from_uvd(xyz_to_uvd(pred_xyz, cam), xyz_to_uvd(gt_xyz, cam), cam)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # The community's NYU intrinsics mirror y (fy < 0): the same distances.
    mirrored = xyz_to_uvd(pred_xyz * [1, -1, 1], cam), xyz_to_uvd(gt_xyz * [1, -1, 1], cam)
    np.testing.assert_allclose(joint_errors_from_uvd(*mirrored, cam), expected, atol=1e-9)


@pytest.mark.parametrize(
    ("pred_shape", "match"),
    [((3, 2, 3), "frame or joint counts differ"), ((2, 3, 3), "frame or joint counts differ")],
)
def test_mismatched_counts_raise(pred_shape, match):
    with pytest.raises(ValueError, match=match):
        joint_errors_mm(np.ones(pred_shape), np.ones((2, 2, 3)))


def test_nan_prediction_names_the_frame():
    pred, gt = _pair()
    pred[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="prediction joints_xyz has NaN or infinite values in frame 1"):
        joint_errors_mm(pred, gt)
