"""What the explorer computes: depth image -> pose, latent point -> pose + depth, walks, downloads.

Everything here is a function of its inputs (the model is read, never changed), testable without
a UI. The shared latent z (the paper's z_y: 20-d VAE code + 3-d root offset, (L,) = (23,)) is
moved along the principal directions of the training latents, stored with the checkpoint
(`crossingnets.checkpoint.LatentStats`); slider values are PCA coefficients in standard
deviations of their direction.
"""

from __future__ import annotations

import base64
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

from crossingnets.camera import Intrinsics, uvd_to_xyz
from crossingnets.checkpoint import LatentStats
from crossingnets.data.depth_file import DEFAULT_LIMITS, UploadLimits, camera_for, load_depth
from crossingnets.data.preprocess import BACKGROUND, CropConfig, NoHandError, preprocess, uvd_to_crop
from crossingnets.draw import depth_to_gray, draw_skeleton
from crossingnets.explorer.figures import Figure, skeleton_figure, smoothness_figure, walk_figure
from crossingnets.files import atomic_output
from crossingnets.hand.conventions import FINGERS, Convention

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator

# The generator ends in tanh, so its background never reaches +1 exactly: pixels above this are
# shown as background (a trained generator puts them at 0.99+; hands lie below 0.9).
GENERATED_BACKGROUND = 0.95
IMAGE_SIDE_PX = 256  # crops are shown enlarged to about this side (nearest neighbour)
SLIDER_SIGMAS = 3.0  # PCA sliders span +- this many standard deviations of their direction


@dataclass(frozen=True)
class ExplorerConfig:
    pca_sliders: int = 8  # principal directions shown as sliders (the rest in the raw panel)
    walk_steps: int = 16  # default number of latent points of a walk
    max_walk_steps: int = 64  # bound on a requested walk
    random_step_sigma: float = 0.35  # random walk: step std per PCA direction, in its std
    random_walk_pull: float = 0.1  # random walk: fraction of the way back to the mean per step
    gif_frame_ms: int = 120  # frame duration of the exported walk GIF
    mesh_ik_iterations: int = 120  # IK of the GLB download: synthetic hands fit to 0.1-0.2 mm mean, 2-3 s
    limits: UploadLimits = DEFAULT_LIMITS


# ---------------------------------------------------------------------------------------------
# Images


def crop_scale(crop_px: int) -> int:
    """Integer enlargement that shows a (S, S) crop at about IMAGE_SIDE_PX."""
    return max(1, IMAGE_SIDE_PX // crop_px)


def generated_to_crop(generated: np.ndarray) -> np.ndarray:
    """(..., S, S) generator output in (-1, 1) -> crop with its background exactly at +1."""
    out = np.array(generated, dtype=np.float32)
    out[out > GENERATED_BACKGROUND] = BACKGROUND
    return out


def crop_image(crop: np.ndarray) -> Image.Image:
    """(S, S) normalised crop -> enlarged greyscale RGB image, near bright, background black."""
    gray = depth_to_gray(crop)
    side = gray.shape[0] * crop_scale(gray.shape[0])
    return Image.fromarray(gray).convert("RGB").resize((side, side), Image.NEAREST)


def centered_to_crop_uv(joints_mm: np.ndarray, crop: CropConfig) -> np.ndarray:
    """(..., J, 3) joints relative to the crop centre (mm) -> (..., J, 2) crop pixels.

    Orthographic: exact for points at the centre's depth, within a few percent across the cube,
    which is enough to draw the skeleton of a latent point (it has no camera) over its depth map.
    """
    half = 0.5 * crop.cube_mm
    return np.asarray(joints_mm)[..., :2] / half * (crop.crop_px / 2) + (crop.crop_px - 1) / 2


def png_data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Latent axes (PCA of the training latents)


@dataclass(frozen=True)
class LatentAxes:
    """The principal directions of the training latents, as slider coordinates."""

    components: np.ndarray  # (K, L) unit rows, by decreasing variance
    mean: np.ndarray  # (L,)
    sigma: np.ndarray  # (K,) standard deviation along each direction
    ratio: np.ndarray  # (K,) fraction of the variance along each direction
    low: np.ndarray  # (L,) raw slider bounds per dimension
    high: np.ndarray  # (L,)

    @classmethod
    def from_stats(cls, stats: LatentStats) -> LatentAxes:
        # Raw sliders: the training range widened by half its span on each side (room to extrapolate).
        span = np.maximum(stats.max - stats.min, 1e-3)
        return cls(
            components=np.asarray(stats.components, np.float64),
            mean=np.asarray(stats.mean, np.float64),
            sigma=np.sqrt(np.maximum(stats.explained_variance, 1e-12)),
            ratio=np.asarray(stats.explained_variance_ratio, np.float64),
            low=np.asarray(stats.min - 0.5 * span, np.float64),
            high=np.asarray(stats.max + 0.5 * span, np.float64),
        )

    @property
    def latent_dims(self) -> int:
        return self.mean.shape[0]

    def to_sigmas(self, z: np.ndarray) -> np.ndarray:
        """(..., L) latent -> (..., K) coefficients along the directions, in their std."""
        return (np.asarray(z, np.float64) - self.mean) @ self.components.T / self.sigma

    def with_sigmas(self, z: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
        """Replace the first len(sigmas) coefficients of `z` (L,); the others and any part of `z`
        outside the PCA span are kept, so moving one slider moves z along one direction only."""
        z = np.asarray(z, np.float64)
        sigmas = np.asarray(sigmas, np.float64)
        k = len(sigmas)
        delta = (sigmas - self.to_sigmas(z)[:k]) * self.sigma[:k]
        return z + delta @ self.components[:k]

    def sample(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """(n, L) latents drawn from the Gaussian of the training latents (PCA space)."""
        coeffs = rng.standard_normal((n, len(self.sigma))) * self.sigma
        return self.mean + coeffs @ self.components


def describe_directions(
    estimator: HandPoseEstimator, axes: LatentAxes, convention: Convention, count: int
) -> list[str]:
    """A label per principal direction saying what it changes, from the poses it decodes to.

    Decodes mean +- 2 std along each direction and reports the hand's move (root) and the
    fingers whose joints move most relative to the root, in mm.
    """
    labels = []
    finger_of = np.array(convention.fingers)
    for k in range(count):
        ends = axes.mean + np.outer([-2.0, 2.0], axes.sigma[k] * axes.components[k])
        joints = estimator.decode_latent(ends)  # (2, J, 3) mm about the crop centre
        root = joints[:, convention.root]
        shift = float(np.linalg.norm(root[1] - root[0]))
        local = np.linalg.norm((joints[1] - root[1]) - (joints[0] - root[0]), axis=-1)  # (J,)
        moves = {f: float(local[finger_of == f].max()) for f in FINGERS if (finger_of == f).any()}
        top = sorted(moves, key=moves.get, reverse=True)[:2]
        what = ", ".join(f"{f} {moves[f]:.0f} mm" for f in top)
        labels.append(f"PC{k + 1} ({100 * axes.ratio[k]:.0f}% var): hand moves {shift:.0f} mm; {what}")
    return labels


# ---------------------------------------------------------------------------------------------
# Upload: depth image -> pose


@dataclass(frozen=True)
class PoseResult:
    """The estimate for one depth frame."""

    crop: np.ndarray  # (S, S) network input in [-1, 1]
    com_uvd: np.ndarray  # (3,) crop centre in the frame (px, px, mm)
    joints_xyz: np.ndarray  # (J, 3) camera frame mm
    joints_uvd: np.ndarray  # (J, 3) frame px and mm
    latent: np.ndarray  # (L,) shared latent z_y
    generated: np.ndarray  # (S, S) Gen(Ali(z)) crop, background at +1
    camera: Intrinsics
    seconds: float  # image file -> pose and generated crop, server side


def parse_center(center: tuple[float, float, float] | None, depth_mm: np.ndarray) -> np.ndarray | None:
    """A hand centre (u px, v px, d mm) from the UI; d <= 0 takes the median valid depth within
    7 px of (u, v). None (or all zero) means: detect it."""
    if center is None or not any(center):
        return None
    u, v, d = (float(c) for c in center)
    h, w = depth_mm.shape
    if not (np.isfinite([u, v, d]).all() and 0 <= u < w and 0 <= v < h):
        raise ValueError(f"hand centre ({u:g}, {v:g}) must lie inside the {w}x{h} frame")
    if d <= 0:
        r = 7
        patch = depth_mm[max(0, int(v) - r) : int(v) + r + 1, max(0, int(u) - r) : int(u) + r + 1]
        valid = patch[patch > 0]
        if valid.size == 0:
            raise ValueError(f"no depth within {r} px of the hand centre ({u:g}, {v:g}); give its depth d")
        d = float(np.median(valid))
    return np.array([u, v, d])


def estimate_pose(
    estimator: HandPoseEstimator,
    path: str | os.PathLike,
    camera: str,
    custom: tuple[float, float, float, float] | None = None,
    center: tuple[float, float, float] | None = None,
    limits: UploadLimits = DEFAULT_LIMITS,
) -> PoseResult:
    """An uploaded depth file -> its pose (and the generator's view of it), timed end to end.

    The frame goes through the shared preprocessing (the model's cube and crop side), then the
    network. Raises DepthImageError / NoHandError / ValueError with a message for the user.
    """
    start = time.perf_counter()
    depth = load_depth(path, limits)
    cam = camera_for(camera, depth.shape, custom)
    try:
        crop = preprocess(depth, cam, estimator.crop, parse_center(center, depth))
    except NoHandError as err:
        raise NoHandError(f"depth image {Path(path).name}: {err}") from None
    out = estimator.predict_crops(crop.depth[None, None], crop.com_uvd[None], cam)
    latent = np.asarray(out["latent"], np.float64).reshape(-1)
    generated = generated_to_crop(estimator.generate_depth(latent[None])[0])
    return PoseResult(
        crop=crop.depth,
        com_uvd=crop.com_uvd,
        joints_xyz=np.asarray(out["joints_xyz"], np.float64).reshape(-1, 3),
        joints_uvd=np.asarray(out["joints_uvd"], np.float64).reshape(-1, 3),
        latent=latent,
        generated=generated,
        camera=cam,
        seconds=time.perf_counter() - start,
    )


def pose_images(
    result: PoseResult, convention: Convention, crop: CropConfig
) -> tuple[Image.Image, Image.Image]:
    """(input crop with the estimated 2D skeleton, generated crop from the estimated latent)."""
    joints_crop = uvd_to_crop(result.joints_uvd, result.com_uvd, result.camera, crop)
    scale = crop_scale(crop.crop_px)
    return draw_skeleton(result.crop, joints_crop, convention, scale), crop_image(result.generated)


def pose_figure(result: PoseResult, convention: Convention, crop: CropConfig) -> Figure:
    """The estimated 3D skeleton in the camera frame (mm), in the crop cube around the centre."""
    center = uvd_to_xyz(result.com_uvd, result.camera)
    return skeleton_figure(
        result.joints_xyz, convention, center, 0.5 * crop.cube_mm, "estimated pose (camera mm)"
    )


def pose_record(result: PoseResult, convention: Convention) -> dict:
    """The estimate as JSON-ready data: joints (names, fingers, xyz mm, uvd), centre, latent, camera."""
    return {
        "convention": convention.name,
        "camera": result.camera.to_dict(),
        "com_uvd": np.round(result.com_uvd, 3).tolist(),
        "latent": np.round(result.latent, 6).tolist(),
        "latency_ms": round(1000 * result.seconds, 2),
        "joints": [
            {
                "name": name,
                "finger": finger,
                "xyz_mm": np.round(xyz, 3).tolist(),
                "uvd": np.round(uvd, 3).tolist(),
            }
            for name, finger, xyz, uvd in zip(
                convention.joint_names, convention.fingers, result.joints_xyz, result.joints_uvd, strict=True
            )
        ],
    }


def pose_csv(result: PoseResult, convention: Convention) -> str:
    """One row per joint: index, name, finger, x_mm, y_mm, z_mm, u_px, v_px, d_mm."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["joint", "name", "finger", "x_mm", "y_mm", "z_mm", "u_px", "v_px", "d_mm"])
    for j, (name, finger) in enumerate(zip(convention.joint_names, convention.fingers, strict=True)):
        xyz, uvd = result.joints_xyz[j], result.joints_uvd[j]
        writer.writerow([j, name, finger, *(f"{x:.3f}" for x in xyz), *(f"{x:.3f}" for x in uvd)])
    return buf.getvalue()


def write_pose_files(result: PoseResult, convention: Convention, folder: str | os.PathLike) -> list[Path]:
    """Write joints.json and joints.csv into `folder` (a fresh one per request) -> their paths."""
    paths = [Path(folder) / "joints.json", Path(folder) / "joints.csv"]
    texts = [json.dumps(pose_record(result, convention), indent=1) + "\n", pose_csv(result, convention)]
    for path, text in zip(paths, texts, strict=True):
        with atomic_output(path) as tmp:
            tmp.write_text(text)
    return paths


def write_pose_mesh(
    joints_xyz: np.ndarray, convention: Convention, path: str | os.PathLike, ik_iterations: int
) -> Path:
    """The posed hand mesh of (J, 3) camera-frame joints (mm) as GLB: the kinematic hand fitted
    by IK, its capsules meshed (trimesh). ICVL labels a left hand, so it is fitted mirrored."""
    from crossingnets.hand.ik import fit_ik  # imported here: only this download needs IK and trimesh
    from crossingnets.hand.kinematics import hand_capsules
    from crossingnets.hand.mesh import export_mesh, hand_mesh

    fit = fit_ik(
        np.asarray(joints_xyz)[None],
        convention,
        iterations=ik_iterations,
        left_hand=convention.name == "icvl",
    )
    return export_mesh(hand_mesh(hand_capsules(fit.pose, fit.shape)), path)


# ---------------------------------------------------------------------------------------------
# Latent point -> pose and depth


def latent_views(
    estimator: HandPoseEstimator, z: np.ndarray, convention: Convention, crop: CropConfig
) -> tuple[Figure, Image.Image]:
    """One latent point (L,) -> (3D skeleton about the crop centre, generated depth crop image)."""
    z = np.asarray(z, np.float64).reshape(1, -1)
    joints = estimator.decode_latent(z)[0]
    generated = generated_to_crop(estimator.generate_depth(z)[0])
    fig = skeleton_figure(
        joints, convention, np.zeros(3), 0.5 * crop.cube_mm, "decoded pose (mm about the crop centre)"
    )
    return fig, crop_image(generated)


# ---------------------------------------------------------------------------------------------
# Walks


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int) -> np.ndarray:
    """(steps, L) points on the straight line from z_a to z_b, both ends included."""
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * np.asarray(z_a, np.float64) + t * np.asarray(z_b, np.float64)


def random_walk(
    axes: LatentAxes, start: np.ndarray, steps: int, rng: np.random.Generator, step_sigma: float, pull: float
) -> np.ndarray:
    """(steps, L) a random walk in PCA space from `start`: Gaussian steps of `step_sigma` std per
    direction, pulled a fraction `pull` back to the mean each step so it stays among training latents."""
    if steps < 2:
        raise ValueError(f"a walk needs at least 2 steps, got {steps}")
    c = axes.to_sigmas(start)
    rest = np.asarray(start, np.float64) - axes.mean - (c * axes.sigma) @ axes.components
    out = [np.asarray(start, np.float64)]
    for _ in range(steps - 1):
        c = (1 - pull) * c + step_sigma * rng.standard_normal(c.shape)
        out.append(axes.mean + rest + (c * axes.sigma) @ axes.components)
    return np.stack(out)


@dataclass(frozen=True)
class Walk:
    latents: np.ndarray  # (T, L)
    joints: np.ndarray  # (T, J, 3) mm about the crop centre
    generated: np.ndarray  # (T, S, S) crops, background at +1
    latent_distance: np.ndarray  # (T-1,) |z_t+1 - z_t|
    smoothness_distance: np.ndarray  # (T-1,) |smo(Gen(z_t), Gen(z_t+1))|, the smoothness head's estimate


def run_walk(estimator: HandPoseEstimator, latents: np.ndarray) -> Walk:
    """Decode and render every point of a walk (T, L) and measure consecutive distances."""
    latents = np.asarray(latents, np.float64)
    raw = np.asarray(estimator.generate_depth(latents))
    smo = np.linalg.norm(estimator.smoothness_distance(raw[:-1], raw[1:]), axis=1)  # smo(a, b): (T-1, L)
    return Walk(
        latents=latents,
        joints=np.asarray(estimator.decode_latent(latents), np.float64),
        generated=generated_to_crop(raw),
        latent_distance=np.linalg.norm(np.diff(latents, axis=0), axis=1),
        smoothness_distance=smo,
    )


def walk_frames(walk: Walk, convention: Convention, crop: CropConfig) -> list[Image.Image]:
    """Per step, the generated depth crop with the decoded skeleton drawn over it."""
    uv = centered_to_crop_uv(walk.joints, crop)
    scale = crop_scale(crop.crop_px)
    return [draw_skeleton(g, j, convention, scale) for g, j in zip(walk.generated, uv, strict=True)]


def walk_figures(
    walk: Walk, convention: Convention, crop: CropConfig, frame_ms: int
) -> tuple[Figure, Figure]:
    """(animated skeleton + depth maps, smoothness-vs-latent-distance plot) of a walk."""
    uris = [png_data_uri(crop_image(g)) for g in walk.generated]
    animation = walk_figure(walk.joints, uris, convention, 0.5 * crop.cube_mm, frame_ms)
    return animation, smoothness_figure(walk.latent_distance, walk.smoothness_distance)


def write_gif(frames: list[Image.Image], path: str | os.PathLike, frame_ms: int) -> Path:
    """An animated, looping GIF of `frames`, written atomically."""
    with atomic_output(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return Path(path)
