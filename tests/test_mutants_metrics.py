"""Metrics: the values and refusals that `benchmarks/mutation.py` found untested (each test kills
mutants of crossingnets/metrics.py that tests/test_metrics.py let survive)."""

from __future__ import annotations

import numpy as np
import pytest

from crossingnets.camera import Intrinsics, xyz_to_uvd
from crossingnets.metrics import joint_errors_from_uvd, joint_errors_mm, summarize

CAM = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)


@pytest.mark.parametrize("shape", [(2, 2, 4), (2, 6)], ids=["four_coordinates", "flat"])
def test_ground_truth_that_is_not_n_j_3_is_refused(shape):
    gt = np.zeros(shape)
    with pytest.raises(ValueError, match=r"ground-truth joints_xyz must have shape \(N, J, 3\)"):
        joint_errors_mm(gt.copy(), gt)


@pytest.mark.parametrize(
    ("which", "frame", "joint"), [("prediction", 1, 0), ("ground truth", 2, 0), ("ground truth", 0, 2)]
)
def test_a_non_finite_value_names_its_array_and_frame(which, frame, joint):
    """Three frames of three joints: the frame index is not the joint index."""
    gt = np.full((3, 3, 3), 500.0)
    pred = gt + 1.0
    (pred if which == "prediction" else gt)[frame, joint, 1] = np.inf
    with pytest.raises(ValueError, match=f"^{which} joints_xyz has NaN or infinite values in frame {frame}$"):
        joint_errors_mm(pred, gt)


def test_uvd_ground_truth_at_zero_depth_is_refused_and_just_above_is_not():
    gt_xyz = np.array([[[10.0, -20.0, 0.5], [0.0, 0.0, 0.8]]])
    pred_xyz = gt_xyz + [[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]
    errors = joint_errors_from_uvd(xyz_to_uvd(pred_xyz, CAM), xyz_to_uvd(gt_xyz, CAM), CAM)
    np.testing.assert_allclose(errors, [[5.0, 0.0]], atol=1e-9)
    gt_uvd = xyz_to_uvd(gt_xyz, CAM)
    gt_uvd[0, 1, 2] = 0.0
    with pytest.raises(ValueError, match="depth <= 0 mm"):
        joint_errors_from_uvd(gt_uvd.copy(), gt_uvd, CAM)


def test_summary_of_one_frame_and_of_more_frames_than_joints():
    one = summarize(np.array([[1.0, 2.0, 6.0]]))
    assert one.num_frames == 1 and one.mean_error_mm == pytest.approx(3.0)
    np.testing.assert_allclose(one.per_joint_error_mm, [1.0, 2.0, 6.0])
    np.testing.assert_allclose(one.success_rate[[5, 6, 80]], [0.0, 1.0, 1.0])
    three = summarize(np.array([[1.0, 2.0], [3.0, 4.0], [8.0, 0.0]]))
    assert three.num_frames == 3 and len(three.per_joint_error_mm) == 2
    np.testing.assert_allclose(three.per_joint_error_mm, [4.0, 2.0])
    np.testing.assert_allclose(three.success_rate[[1, 2, 4, 8]], [0.0, 1 / 3, 2 / 3, 1.0])


@pytest.mark.parametrize(
    "errors", [np.zeros((0, 3)), np.zeros(3), np.zeros((2, 2, 1))], ids=["no_frames", "1d", "3d"]
)
def test_summary_refuses_what_is_not_frames_by_joints(errors):
    with pytest.raises(ValueError, match=r"errors must have shape \(N>0, J\)"):
        summarize(errors)
