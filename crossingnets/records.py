"""A Prediction as the files people read: a JSON record, CSV rows (one per joint). What `crossingnets predict` writes and the app offers as downloads, from one place.

Importing this module loads no torch model code (the Prediction type is only named).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from crossingnets.hand.conventions import Convention

if TYPE_CHECKING:
    from crossingnets.inference import Prediction

JOINT_COLUMNS = ("joint", "name", "finger", "x_mm", "y_mm", "z_mm", "u_px", "v_px", "d_mm")


def prediction_record(
    image: str | os.PathLike, pred: Prediction, convention: Convention, frame: int | None = None
) -> dict:
    """One frame's Prediction as `crossingnets predict` prints it: JSON-ready lists, 4 decimals;
    `frame` is the index within a stacked .npy sequence (None for a one-frame file)."""
    arrays = {
        "joints_xyz": pred.joints_xyz_mm,
        "joints_uvd": pred.joints_uvd,
        "com_uvd": pred.center_uvd,
        "latent": pred.latent,
    }
    return {
        "image": str(image),
        "frame": frame,
        "convention": convention.name,
        "joint_names": list(convention.joint_names),
        **{k: np.round(np.asarray(v, np.float64), 4).tolist() for k, v in arrays.items()},
    }


def joint_rows(pred: Prediction, convention: Convention) -> list[list]:
    """One row per joint, in JOINT_COLUMNS order: index, name, finger, x y z mm, u v px, d mm
    (coordinates as text with 3 decimals)."""
    rows = []
    for j, (name, finger) in enumerate(zip(convention.joint_names, convention.fingers, strict=True)):
        xyz, uvd = pred.joints_xyz_mm[j], pred.joints_uvd[j]
        rows.append([j, name, finger, *(f"{x:.3f}" for x in xyz), *(f"{x:.3f}" for x in uvd)])
    return rows
