"""Hand-pose metrics, exactly as the community computes them (pure functions, numpy only).

The community's evaluation (xinghaochen/awesome-hand-pose-estimation, `evaluation/src`) lifts
ground truth and predictions from uvd to camera-frame xyz (mm), takes the Euclidean distance per
joint and frame, and reports
- the mean joint error: the mean over frames and joints (mm);
- the per-joint mean error: the mean over frames, one value per joint (mm);
- the success rate: the fraction of frames whose *worst* joint error is within a threshold
  (`error <= threshold`, thresholds every 1 mm), the "max-frame" curve of Taylor et al. 2012 that
  hand-pose papers plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossingnets.camera import Intrinsics, uvd_to_xyz

# Success-rate thresholds: 0-80 mm every 1 mm, the range of the published curves.
SUCCESS_THRESHOLDS_MM = np.arange(0.0, 81.0, 1.0)


def _check_pair(pred: np.ndarray, gt: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(f"ground-truth {what} must have shape (N, J, 3), got {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(
            f"prediction {what} has shape {pred.shape} (frames, joints, 3) but the ground truth "
            f"has {gt.shape}: frame or joint counts differ"
        )
    for name, arr in (("prediction", pred), ("ground truth", gt)):
        bad = ~np.isfinite(arr).all(axis=(1, 2))
        if bad.any():
            raise ValueError(f"{name} {what} has NaN or infinite values in frame {int(np.argmax(bad))}")
    return pred, gt


def joint_errors_mm(pred_xyz_mm: np.ndarray, gt_xyz_mm: np.ndarray) -> np.ndarray:
    """(N, J, 3) mm, (N, J, 3) mm -> (N, J) Euclidean joint errors in mm."""
    pred, gt = _check_pair(pred_xyz_mm, gt_xyz_mm, "joints_xyz")
    return np.linalg.norm(pred - gt, axis=-1)


def joint_errors_from_uvd(pred_uvd: np.ndarray, gt_uvd: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """(N, J, 3) uvd, (N, J, 3) uvd -> (N, J) errors in mm, both lifted with the same camera.

    This is the community's path: labels and predictions are shared as uvd text and lifted with
    the dataset's intrinsics. The sign of fy only mirrors y, so distances do not depend on it.
    """
    pred, gt = _check_pair(pred_uvd, gt_uvd, "joints_uvd")
    if (gt[..., 2] <= 0).any():
        raise ValueError("ground-truth joints_uvd has depth <= 0 mm; expected d in mm > 0")
    return joint_errors_mm(uvd_to_xyz(pred, cam), uvd_to_xyz(gt, cam))


def mean_error_mm(errors_mm: np.ndarray) -> float:
    """(N, J) errors -> mean over frames and joints, mm."""
    return float(np.mean(errors_mm))


def per_joint_error_mm(errors_mm: np.ndarray) -> np.ndarray:
    """(N, J) errors -> (J,) mean error of each joint over frames, mm."""
    return np.mean(errors_mm, axis=0)


def success_rate(errors_mm: np.ndarray, thresholds_mm: np.ndarray = SUCCESS_THRESHOLDS_MM) -> np.ndarray:
    """(N, J) errors, (T,) thresholds -> (T,) fraction of frames whose worst joint is within each."""
    worst = np.max(errors_mm, axis=1)
    return np.mean(worst[None, :] <= np.asarray(thresholds_mm, dtype=np.float64)[:, None], axis=1)


@dataclass(frozen=True)
class ErrorSummary:
    """All figures of one method on one test set."""

    num_frames: int
    mean_error_mm: float
    per_joint_error_mm: np.ndarray  # (J,)
    thresholds_mm: np.ndarray  # (T,)
    success_rate: np.ndarray  # (T,) fraction of frames, in [0, 1]

    def to_dict(self, joint_names: tuple[str, ...]) -> dict:
        """JSON-ready: per-joint errors keyed by joint name."""
        if len(joint_names) != len(self.per_joint_error_mm):
            raise ValueError(f"{len(joint_names)} joint names for {len(self.per_joint_error_mm)} joints")
        return {
            "num_frames": self.num_frames,
            "mean_error_mm": self.mean_error_mm,
            "per_joint_error_mm": dict(zip(joint_names, self.per_joint_error_mm.tolist(), strict=True)),
            "success_rate": {
                "thresholds_mm": self.thresholds_mm.tolist(),
                "fraction_of_frames": self.success_rate.tolist(),
            },
        }


def summarize(errors_mm: np.ndarray, thresholds_mm: np.ndarray = SUCCESS_THRESHOLDS_MM) -> ErrorSummary:
    """(N, J) errors -> every figure we report."""
    errors_mm = np.asarray(errors_mm, dtype=np.float64)
    if errors_mm.ndim != 2 or errors_mm.shape[0] == 0:
        raise ValueError(f"errors must have shape (N>0, J), got {errors_mm.shape}")
    thresholds = np.asarray(thresholds_mm, dtype=np.float64)
    return ErrorSummary(
        num_frames=int(errors_mm.shape[0]),
        mean_error_mm=mean_error_mm(errors_mm),
        per_joint_error_mm=per_joint_error_mm(errors_mm),
        thresholds_mm=thresholds,
        success_rate=success_rate(errors_mm, thresholds),
    )
