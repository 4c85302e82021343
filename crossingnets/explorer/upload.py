"""The upload tab: a depth file -> its pose, the generator's view of it, and the downloads.

Pure functions first (file -> `PoseResult` -> images, 3D figure, JSON/CSV, GLB mesh), then the
tab's view, which `app/ui.py` wires to its components. The frame goes through the one inference
path (`HandPoseEstimator.predict_file`), so the app shows what `crossingnets predict` prints.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from crossingnets.camera import CAMERAS
from crossingnets.data.depth_file import DEFAULT_LIMITS, UploadLimits
from crossingnets.data.preprocess import CropConfig, uvd_to_crop
from crossingnets.draw import draw_skeleton
from crossingnets.explorer.figures import Figure, crop_image, crop_scale, generated_to_crop, skeleton_figure
from crossingnets.explorer.space import Explorer
from crossingnets.files import atomic_output
from crossingnets.hand.conventions import Convention

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator, Prediction

CAMERA_CHOICES = (*CAMERAS, "custom")  # what `crossingnets.data.depth_file.camera_for` accepts


@dataclass(frozen=True)
class PoseResult:
    """The estimate for one uploaded frame, with the generator's view of it."""

    prediction: Prediction  # joints, crop, centre, latent and camera of the frame
    generated: np.ndarray  # (S, S) Gen(Ali(z)) crop of the estimated latent, background at +1
    seconds: float  # image file -> pose and generated crop, server side


def estimate_pose(
    estimator: HandPoseEstimator,
    path: str | os.PathLike,
    camera: str,
    custom: tuple[float, float, float, float] | None = None,
    center: tuple[float, float, float] | None = None,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> PoseResult:
    """An uploaded depth file -> its pose (and the generator's view of it), timed end to end.

    camera, custom and center as `HandPoseEstimator.predict_file` reads them. Raises
    DepthImageError / NoHandError / ValueError with a message for the user.
    """
    start = time.perf_counter()
    prediction = estimator.predict_file(path, camera, custom, center, limits)
    generated = generated_to_crop(estimator.generate_depth(prediction.latent[None])[0])
    return PoseResult(prediction, generated, time.perf_counter() - start)


def pose_images(
    result: PoseResult, convention: Convention, crop: CropConfig
) -> tuple[Image.Image, Image.Image]:
    """(input crop with the estimated 2D skeleton, generated crop from the estimated latent)."""
    p = result.prediction
    joints_crop = uvd_to_crop(p.joints_uvd, p.center_uvd, p.camera, crop)
    scale = crop_scale(crop.crop_px)
    return draw_skeleton(p.crop, joints_crop, convention, scale), crop_image(result.generated)


def pose_figure(prediction: Prediction, convention: Convention, crop: CropConfig) -> Figure:
    """The estimated 3D skeleton in the camera frame (mm), in the crop cube around the centre."""
    return skeleton_figure(
        prediction.joints_xyz_mm,
        convention,
        prediction.center_xyz_mm,
        0.5 * crop.cube_mm,
        "estimated pose (camera mm)",
    )


def pose_record(result: PoseResult, convention: Convention) -> dict:
    """The estimate as JSON-ready data: joints (names, fingers, xyz mm, uvd), centre, latent, camera."""
    p = result.prediction
    return {
        "convention": convention.name,
        "camera": p.camera.to_dict(),
        "com_uvd": np.round(p.center_uvd, 3).tolist(),
        "latent": np.round(p.latent.astype(np.float64), 6).tolist(),
        "latency_ms": round(1000 * result.seconds, 2),
        "joints": [
            {
                "name": name,
                "finger": finger,
                "xyz_mm": np.round(xyz.astype(np.float64), 3).tolist(),
                "uvd": np.round(uvd.astype(np.float64), 3).tolist(),
            }
            for name, finger, xyz, uvd in zip(
                convention.joint_names, convention.fingers, p.joints_xyz_mm, p.joints_uvd, strict=True
            )
        ],
    }


def pose_csv(prediction: Prediction, convention: Convention) -> str:
    """One row per joint: index, name, finger, x_mm, y_mm, z_mm, u_px, v_px, d_mm."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["joint", "name", "finger", "x_mm", "y_mm", "z_mm", "u_px", "v_px", "d_mm"])
    for j, (name, finger) in enumerate(zip(convention.joint_names, convention.fingers, strict=True)):
        xyz, uvd = prediction.joints_xyz_mm[j], prediction.joints_uvd[j]
        writer.writerow([j, name, finger, *(f"{x:.3f}" for x in xyz), *(f"{x:.3f}" for x in uvd)])
    return buf.getvalue()


def write_pose_files(result: PoseResult, convention: Convention, folder: str | os.PathLike) -> list[Path]:
    """Write joints.json and joints.csv into `folder` (a fresh one per request) -> their paths."""
    paths = [Path(folder) / "joints.json", Path(folder) / "joints.csv"]
    texts = [
        json.dumps(pose_record(result, convention), indent=1) + "\n",
        pose_csv(result.prediction, convention),
    ]
    for path, text in zip(paths, texts, strict=True):
        with atomic_output(path) as tmp:
            tmp.write_text(text)
    return paths


def write_pose_mesh(
    joints_xyz_mm: np.ndarray, convention: Convention, path: str | os.PathLike, ik_iterations: int
) -> Path:
    """The posed hand mesh of (J, 3) camera-frame joints (mm) as GLB: the kinematic hand fitted
    by IK (mirrored for a convention that labels a left hand), its capsules meshed (trimesh)."""
    from crossingnets.hand.ik import fit_ik  # imported here: only this download needs IK and trimesh
    from crossingnets.hand.kinematics import hand_capsules
    from crossingnets.hand.mesh import export_mesh, hand_mesh

    fit = fit_ik(
        np.asarray(joints_xyz_mm)[None],
        convention,
        iterations=ik_iterations,
        left_hand=convention.left_hand,
    )
    return export_mesh(hand_mesh(hand_capsules(fit.pose, fit.shape)), path)


# ---------------------------------------------------------------------------------------------
# The tab


@dataclass(frozen=True)
class UploadView:
    overlay: Image.Image  # the detected crop with the estimated 2D skeleton
    generated: Image.Image  # Gen(Ali(z)) from the estimated latent
    figure: Figure  # the 3D skeleton, camera frame mm
    summary: str  # latency and centre, Markdown
    files: list[Path]  # joints.json, joints.csv
    latent: np.ndarray  # (L,)
    joints_xyz_mm: np.ndarray  # (J, 3), for the mesh download


def upload_view(
    ex: Explorer,
    path: str | os.PathLike,
    camera: str,
    custom: tuple[float, float, float, float] | None,
    center: tuple[float, float, float] | None,
    out_dir: str | os.PathLike,
) -> UploadView:
    """A depth file -> everything the upload tab shows; raises ValueError with the user's message."""
    result = estimate_pose(ex.estimator, path, camera, custom, center, ex.config.limits)
    overlay, generated = pose_images(result, ex.convention, ex.crop)
    u, v, d = result.prediction.center_uvd
    summary = (
        f"**{1000 * result.seconds:.1f} ms** server side (file -> pose and generated depth) · "
        f"hand centre u={u:.0f} px, v={v:.0f} px, d={d:.0f} mm · {ex.convention.name.upper()} joints"
    )
    return UploadView(
        overlay=overlay,
        generated=generated,
        figure=pose_figure(result.prediction, ex.convention, ex.crop),
        summary=summary,
        files=write_pose_files(result, ex.convention, out_dir),
        latent=result.prediction.latent,
        joints_xyz_mm=result.prediction.joints_xyz_mm,
    )


def mesh_view(ex: Explorer, joints_xyz_mm: np.ndarray | None, out_dir: str | os.PathLike) -> Path:
    """The posed hand mesh (GLB) of the last upload's joints."""
    if joints_xyz_mm is None:
        raise ValueError("estimate a pose first (upload a depth image), then export its mesh")
    return write_pose_mesh(
        joints_xyz_mm, ex.convention, Path(out_dir) / "hand.glb", ex.config.mesh_ik_iterations
    )
