"""The upload tab: a depth file from any camera -> its pose, the generator's view of it, the downloads.

Pure functions first (file -> `PoseResult` -> images, 3D figure, JSON/CSV, GLB mesh; the frame's
preview with the detector's choice, where a click sets the hand centre; analysis by synthesis,
`synthesis.py`: the crop beside the generator's crop of its latent, and the error of each joint
where the frame has labels), then the tab's views, which `app/ui.py` wires to its components.
The frame goes through the one inference path (`HandPoseEstimator.predict_file`: depth unit,
camera preset or file, handedness), so the app shows what `crossingnets predict` prints.
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
from PIL import Image, ImageDraw

from crossingnets.camera import CAMERAS, CUSTOM, PRESETS, Handedness, Intrinsics
from crossingnets.data.depth_file import DEFAULT_LIMITS, UploadLimits, load_depth, parse_center
from crossingnets.data.depth_units import sensor_frame_to_mm
from crossingnets.data.preprocess import CropConfig, detect_center, half_size_px, uvd_to_crop
from crossingnets.draw import draw_skeleton
from crossingnets.explorer.figures import Figure, crop_scale, generated_to_crop, skeleton_figure
from crossingnets.explorer.space import Explorer
from crossingnets.explorer.synthesis import SynthesisView, joint_error_figure, joint_errors_mm, synthesis_view
from crossingnets.files import atomic_output
from crossingnets.hand.conventions import Convention
from crossingnets.records import JOINT_COLUMNS, joint_rows

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator, Prediction

CAMERA_FILE = "file"  # the camera choice that reads the uploaded camera file
CAMERA_CHOICES = (*PRESETS, CUSTOM, CAMERA_FILE)


def camera_choice_label(choice: str) -> str:
    """What the camera menu shows for a choice: the preset's sensor, or what the choice does."""
    if choice in PRESETS:
        return f"{PRESETS[choice].label} ({'/'.join(m.size for m in PRESETS[choice].modes)})"
    return {CUSTOM: "custom (fx, fy, cx, cy below)", CAMERA_FILE: "camera file (below)"}[choice]


def camera_spec(choice: str, camera_file: str | os.PathLike | None) -> str | os.PathLike:
    """The camera as `HandPoseEstimator.predict_file` takes it: a preset, "custom", or the file."""
    if choice != CAMERA_FILE:
        return choice
    if not camera_file:
        raise ValueError("upload a camera file (ROS camera_info YAML, RealSense JSON) or choose a preset")
    return camera_file


@dataclass(frozen=True)
class PoseResult:
    """The estimate for one uploaded frame, with the generator's view of it."""

    prediction: Prediction  # joints, crop, centre, latent and camera of the frame
    # (S, S) Gen(Ali(z)) crop of the estimated latent, background at +1, seen as the frame shows
    # the hand: mirrored for a left hand, like `prediction.crop` (the latent is the right hand's)
    generated: np.ndarray
    seconds: float  # image file -> pose and generated crop, server side


def estimate_pose(
    estimator: HandPoseEstimator,
    path: str | os.PathLike,
    camera: str | os.PathLike | Intrinsics,
    custom: tuple[float, float, float, float] | None = None,
    center: tuple[float, float, float] | None = None,
    limits: UploadLimits = DEFAULT_LIMITS,
    *,
    depth_unit: str | float = "mm",
    handedness: Handedness = "right",
) -> PoseResult:
    """An uploaded depth file -> its pose (and the generator's view of it), timed end to end.

    camera, custom, center, depth_unit and handedness as `HandPoseEstimator.predict_raw` reads
    them. Raises DepthImageError / NoHandError / ValueError with a message for the user.
    """
    start = time.perf_counter()
    prediction = estimator.predict_file(
        path, camera, custom, center, limits, depth_unit=depth_unit, handedness=handedness
    )
    # drawn around the centre of the crop the network saw (a left hand's is the mirror image's)
    seen = prediction.center_xyz_mm * (np.array([-1.0, 1.0, 1.0]) if handedness == "left" else 1.0)
    generated = generated_to_crop(estimator.generate_depth(prediction.latent[None], seen[None])[0])
    if handedness == "left":
        generated = np.ascontiguousarray(generated[..., ::-1])
    return PoseResult(prediction, generated, time.perf_counter() - start)


def pose_overlay(prediction: Prediction, convention: Convention, crop: CropConfig) -> Image.Image:
    """The input crop with the estimated 2D skeleton."""
    joints_crop = uvd_to_crop(prediction.joints_uvd, prediction.center_uvd, prediction.camera, crop)
    return draw_skeleton(prediction.crop, joints_crop, convention, crop_scale(crop.crop_px))


def same_camera(a: Intrinsics, b: Intrinsics) -> bool:
    """Whether two cameras project alike (size and intrinsics; a custom camera typed as a preset is it)."""
    return (a.width_px, a.height_px) == (b.width_px, b.height_px) and bool(
        np.allclose([a.fx, a.fy, a.cx, a.cy], [b.fx, b.fy, b.cx, b.cy], rtol=0, atol=1e-6)
    )


def labelled_errors(
    ex: Explorer, path: str | os.PathLike, prediction: Prediction
) -> tuple[np.ndarray | None, str]:
    """((J,) 3D error of each estimated joint in mm, or None, a Markdown line): the error against
    the frame's labels when it is an example (`Explorer.labels_of`, by content), compared in the
    camera frame the labels are in; else None and why there is no error."""
    labels = ex.labels_of(path)
    if labels is None:
        return None, "no labels for this frame (the examples have theirs): no error per joint"
    truth = labels.joints_xyz_mm.get(ex.convention.name)
    if truth is None:
        return (
            None,
            f"the labels of this frame have no {ex.convention.name.upper()} joints: no error per joint",
        )
    if not same_camera(prediction.camera, CAMERAS[labels.camera]):
        return None, (
            f"this frame's labels are in the {labels.camera.upper()} camera's frame; choose that camera "
            "to see the error of each joint"
        )
    errors = joint_errors_mm(prediction.joints_xyz_mm, truth)
    worst = int(np.argmax(errors))
    return errors, (
        f"against the frame's labels: mean joint error **{errors.mean():.1f} mm**, largest "
        f"{errors[worst]:.1f} mm ({ex.convention.joint_names[worst]})"
    )


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
    writer.writerow(JOINT_COLUMNS)
    writer.writerows(joint_rows(prediction, convention))
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
    joints_xyz_mm: np.ndarray,
    convention: Convention,
    path: str | os.PathLike,
    ik_iterations: int,
    handedness: Handedness = "right",
) -> Path:
    """The posed hand mesh of (J, 3) camera-frame joints (mm) as GLB: the kinematic (right) hand
    fitted by IK, its capsules meshed (trimesh). A left hand (a convention that labels one, or a
    frame estimated as left) is fitted in the mirror image and its mesh mirrored back (x -> -x,
    trimesh turns the faces), so the mesh is a left hand where the joints are."""
    from crossingnets.hand.ik import fit_ik  # imported here: only this download needs IK and trimesh
    from crossingnets.hand.kinematics import hand_capsules
    from crossingnets.hand.mesh import export_mesh, hand_mesh

    left = convention.left_hand != (handedness == "left")
    fit = fit_ik(np.asarray(joints_xyz_mm)[None], convention, iterations=ik_iterations, left_hand=left)
    mesh = hand_mesh(hand_capsules(fit.pose, fit.shape))
    if left:  # fit_ik's pose describes the mirrored right hand
        mesh.apply_transform(np.diag([-1.0, 1.0, 1.0, 1.0]))
    return export_mesh(mesh, path)


# ---------------------------------------------------------------------------------------------
# The frame's preview: where the detector looks, where the user clicks, where the crop was taken

PREVIEW_COLOURS = {"detected": (255, 80, 60), "chosen": (40, 200, 255), "crop": (70, 220, 70)}
PREVIEW_LEGEND = (
    "red: the detector's hand centre and cube · cyan: your centre · green: the crop the pose comes from "
    "(re-centred on the predicted palm) · click the hand in the frame to set its centre"
)


def depth_image(raw: np.ndarray) -> Image.Image:
    """A frame in any unit as an RGB picture: near bright, far dark (over the 1st-99th percentile
    of its valid pixels), missing black. Pixel (u, v) of the picture is pixel (u, v) of the frame."""
    raw = np.asarray(raw, np.float64)
    valid = raw > 0
    grey = np.zeros(raw.shape, np.uint8)
    if valid.any():
        lo, hi = np.percentile(raw[valid], [1, 99])
        nearness = np.clip((hi - raw[valid]) / max(hi - lo, 1e-9), 0.0, 1.0)
        grey[valid] = np.round(40 + 215 * nearness).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def mark_center(image: Image.Image, center_uvd: np.ndarray, cam: Intrinsics, cube_mm: float, colour) -> None:
    """Draw a cross at a centre (u, v, d) and the square its metric cube projects to, in place."""
    u, v = float(center_uvd[0]), float(center_uvd[1])
    hu, hv = half_size_px(center_uvd, cam, cube_mm)
    r = max(5.0, min(image.size) / 40)
    draw = ImageDraw.Draw(image)
    draw.rectangle([u - hu, v - hv, u + hu, v + hv], outline=colour, width=2)
    draw.line([u - r, v, u + r, v], fill=colour, width=2)
    draw.line([u, v - r, u, v + r], fill=colour, width=2)


@dataclass(frozen=True)
class FramePreview:
    image: Image.Image  # the whole frame (its own size) with the centres marked
    caption: str  # the detector's centre, or why there is none, Markdown


def preview_view(
    ex: Explorer,
    path: str | os.PathLike,
    camera: str | os.PathLike,
    custom: tuple[float, float, float, float] | None,
    center: tuple[float, float, float] | None,
    depth_unit: str | float = "mm",
    crop_uvd: np.ndarray | None = None,
) -> FramePreview:
    """The uploaded frame with the detector's choice (and the user's centre, and the crop a pose
    came from, `crop_uvd`). A unit, camera or centre that does not fit is said in the caption,
    over the frame, so the user sees both; only an unreadable file raises (DepthImageError)."""
    name = f"depth image {Path(path).name}"
    raw = load_depth(path, ex.config.limits)
    image = depth_image(raw)
    try:
        depth, cam = sensor_frame_to_mm(raw, camera, custom, depth_unit, name, ex.crop.max_depth_mm)
    except ValueError as err:
        return FramePreview(image, f"{err}")
    if crop_uvd is not None:  # drawn first: a centre the user gave is the crop's, and stays visible
        mark_center(image, crop_uvd, cam, ex.crop.cube_mm, PREVIEW_COLOURS["crop"])
    lines = []
    try:
        detected = detect_center(depth, cam, ex.estimator.crop)
        mark_center(image, detected, cam, ex.crop.cube_mm, PREVIEW_COLOURS["detected"])
        lines.append(f"detector: u={detected[0]:.0f} px, v={detected[1]:.0f} px, d={detected[2]:.0f} mm")
    except ValueError as err:  # NoHandError
        lines.append(f"detector: {err}")
    try:
        chosen = parse_center(center, depth)
    except ValueError as err:
        chosen, lines = None, [*lines, f"your centre: {err}"]
    if chosen is not None:
        mark_center(image, chosen, cam, ex.crop.cube_mm, PREVIEW_COLOURS["chosen"])
        lines.append(f"your centre: u={chosen[0]:.0f} px, v={chosen[1]:.0f} px, d={chosen[2]:.0f} mm")
    return FramePreview(image, " · ".join(lines))


# ---------------------------------------------------------------------------------------------
# The tab


@dataclass(frozen=True)
class UploadView:
    overlay: Image.Image  # the detected crop with the estimated 2D skeleton
    figure: Figure  # the 3D skeleton, camera frame mm
    synthesis: SynthesisView  # input crop | Gen(Ali(z)) of the estimated latent | difference (mm)
    joint_errors_mm: np.ndarray | None  # (J,) against the frame's labels, where it has them
    error_figure: Figure | None  # a bar per joint of `joint_errors_mm`
    synthesis_note: str  # what the crops and the errors add up to, Markdown
    summary: str  # latency and centre, Markdown
    files: list[Path]  # joints.json, joints.csv
    latent: np.ndarray  # (L,)
    joints_xyz_mm: np.ndarray  # (J, 3), for the mesh download
    preview: Image.Image  # the whole frame: detector's centre, the user's, the crop's


def upload_view(
    ex: Explorer,
    path: str | os.PathLike,
    camera: str | os.PathLike,
    custom: tuple[float, float, float, float] | None,
    center: tuple[float, float, float] | None,
    out_dir: str | os.PathLike,
    *,
    depth_unit: str | float = "mm",
    handedness: Handedness = "right",
) -> UploadView:
    """A depth file -> everything the upload tab shows; raises ValueError with the user's message."""
    result = estimate_pose(
        ex.estimator,
        path,
        camera,
        custom,
        center,
        ex.config.limits,
        depth_unit=depth_unit,
        handedness=handedness,
    )
    p = result.prediction
    errors, errors_note = labelled_errors(ex, path, p)
    synthesis = synthesis_view(p.crop, result.generated, ex.crop.cube_mm)
    u, v, d = p.center_uvd
    preview = preview_view(ex, path, camera, custom, center, depth_unit, result.prediction.center_uvd)
    summary = (
        f"**{1000 * result.seconds:.1f} ms** server side (file -> pose and generated depth) · "
        f"hand centre u={u:.0f} px, v={v:.0f} px, d={d:.0f} mm · {handedness} hand · "
        f"{ex.convention.name.upper()} joints\n\n{preview.caption}\n\n{PREVIEW_LEGEND}"
    )
    return UploadView(
        overlay=pose_overlay(p, ex.convention, ex.crop),
        figure=pose_figure(p, ex.convention, ex.crop),
        synthesis=synthesis,
        joint_errors_mm=errors,
        error_figure=None if errors is None else joint_error_figure(errors, ex.convention),
        synthesis_note=f"{synthesis.summary}\n\n{errors_note}",
        summary=summary,
        files=write_pose_files(result, ex.convention, out_dir),
        latent=result.prediction.latent,
        joints_xyz_mm=result.prediction.joints_xyz_mm,
        preview=preview.image,
    )


def mesh_view(
    ex: Explorer,
    joints_xyz_mm: np.ndarray | None,
    out_dir: str | os.PathLike,
    handedness: Handedness = "right",
) -> Path:
    """The posed hand mesh (GLB) of the last upload's joints."""
    if joints_xyz_mm is None:
        raise ValueError("estimate a pose first (upload a depth image), then export its mesh")
    return write_pose_mesh(
        joints_xyz_mm, ex.convention, Path(out_dir) / "hand.glb", ex.config.mesh_ik_iterations, handedness
    )
