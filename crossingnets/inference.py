"""Pose estimation with released weights, and the `crossingnets predict` command.

One path from a depth frame to joints, which the CLI, the explorer, `evaluate --checkpoint` and
the benchmarks all take, each entering where its data starts:
`HandPoseEstimator.predict_file` (a depth file: read, camera, given centre) -> `predict` (raw
frames in mm: hand centre, metric-cube crop, `crossingnets.data.preprocess`) -> `predict_crops`
(crops as stores hold them: trunk -> posterior head -> VAE decoder). Each returns a `Prediction`:
joints in camera-frame mm and in uvd, the crop, its centre, the latent. The app's latent-space
tools (`decode_latent`, `generate_depth`, `smoothness_distance`) live here too.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from crossingnets.camera import CAMERAS, Intrinsics, uvd_to_xyz, xyz_to_uvd
from crossingnets.checkpoint import WEIGHTS_FILE, LatentStats, load_latent_stats
from crossingnets.data.depth_file import DEFAULT_LIMITS, UploadLimits, camera_for, load_depth, parse_center
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.hand.conventions import Convention, get_convention
from crossingnets.models import CrossingNet, LatentPoseModel


def resolve_model_folder(path: str | os.PathLike) -> Path:
    """A released-weights folder, or a training run folder holding one under `model/`."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file() and (path / "model" / WEIGHTS_FILE).is_file():
        return path / "model"
    return path


def joints_from_crop_frame(
    joints_mm: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics
) -> tuple[np.ndarray, np.ndarray]:
    """Joints (B, J, 3) in mm relative to the crop centres com_uvd (B, 3) -> camera-frame xyz mm
    (B, J, 3) and full-frame uvd (B, J, 3)."""
    joints_xyz = joints_mm + uvd_to_xyz(com_uvd, cam)[:, None]
    return joints_xyz.astype(np.float32), xyz_to_uvd(joints_xyz, cam).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    """The estimate for one frame; for a batch every array gains a leading B axis.

    Joints and centre are in the frame of `camera` (x right, y down, z forward). The crop is what
    the network saw, so a caller draws on it (`crossingnets.data.preprocess.uvd_to_crop`) without
    preprocessing the frame again.
    """

    joints_xyz_mm: np.ndarray  # (J, 3) float32, camera frame
    joints_uvd: np.ndarray  # (J, 3) float32, full-frame px, px and depth mm
    crop: np.ndarray  # (S, S) float32 network input in [-1, 1], background +1
    center_uvd: np.ndarray  # (3,) float64 crop centre, px, px, mm
    center_xyz_mm: np.ndarray  # (3,) float64 crop centre, camera frame
    latent: np.ndarray  # (L,) float32 shared latent z_y
    camera: Intrinsics  # one for the whole batch

    def frame(self, i: int) -> Prediction:
        """Frame i of a batch."""
        arrays = (f.name for f in fields(self) if f.name != "camera")
        return replace(self, **{name: getattr(self, name)[i] for name in arrays})


class HandPoseEstimator:
    """A trained model with its crop settings, on a device, in eval mode."""

    def __init__(
        self,
        model: LatentPoseModel,
        latent_stats: LatentStats | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.latent_stats = latent_stats

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> HandPoseEstimator:
        """Load released weights (or a run folder's `model/`) with their latent statistics."""
        folder = resolve_model_folder(path)
        return cls(LatentPoseModel.from_pretrained(folder), load_latent_stats(folder), device)

    @property
    def crop(self) -> CropConfig:
        return CropConfig(cube_mm=self.model.config.cube_mm, crop_px=self.model.config.crop_px)

    @property
    def convention(self) -> Convention:
        return get_convention(self.model.config.convention)

    def _tensor(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32).to(self.device)

    @torch.inference_mode()
    def predict_crops(
        self,
        crops: np.ndarray | torch.Tensor,
        center_uvd: np.ndarray,
        camera: Intrinsics,
        batch_size: int = 256,
    ) -> Prediction:
        """Network crops (B, 1, S, S) (or (B, S, S)) in [-1, 1] with their centres (B, 3) uvd -> the
        batch's Prediction.

        Runs `batch_size` crops at a time (a whole test set fits in memory as crops, not as
        activations).
        """
        x = torch.as_tensor(crops, dtype=torch.float32)  # moved to the device chunk by chunk
        if x.ndim == 3:
            x = x[:, None]
        s = self.crop.crop_px
        if x.ndim != 4 or x.shape[1:] != (1, s, s):
            raise ValueError(f"crops must have shape (B, 1, {s}, {s}), got {tuple(x.shape)}")
        center_uvd = np.asarray(center_uvd, dtype=np.float64).reshape(-1, 3)
        if len(center_uvd) != len(x):
            raise ValueError(f"got {len(x)} crops but {len(center_uvd)} centres")
        chunks = [self.model(x[i : i + batch_size].to(self.device)) for i in range(0, len(x), batch_size)]
        joints_mm, latent = (torch.cat(parts).cpu().numpy() for parts in zip(*chunks, strict=True))
        joints_xyz, joints_uvd = joints_from_crop_frame(joints_mm, center_uvd, camera)
        return Prediction(
            joints_xyz_mm=joints_xyz,
            joints_uvd=joints_uvd,
            crop=x[:, 0].cpu().numpy(),
            center_uvd=center_uvd,
            center_xyz_mm=uvd_to_xyz(center_uvd, camera),
            latent=latent,
            camera=camera,
        )

    def predict(
        self, depth_mm: np.ndarray, camera: Intrinsics, center_uvd: np.ndarray | None = None
    ) -> Prediction:
        """Raw depth frame(s) in mm, (H, W) or (B, H, W), 0 = missing -> their Prediction, without
        the batch axis for a single frame. `center_uvd` (3,) or (B, 3) skips the hand detection;
        a detected centre is moved to the predicted palm `recenter_passes` times (the model's
        config): the detection is pulled toward the forearm, 48 mm from the palm on average."""
        depth_mm = np.asarray(depth_mm)
        single = depth_mm.ndim == 2
        frames = depth_mm[None] if single else depth_mm
        if frames.ndim != 3:
            raise ValueError(f"depth must be (H, W) or (B, H, W) in mm, got shape {depth_mm.shape}")
        centers = (
            [None] * len(frames)
            if center_uvd is None
            else np.asarray(center_uvd, float).reshape(len(frames), 3)
        )
        out = self._predict_centred(frames, camera, centers)
        if center_uvd is None:  # a centre the user gives is kept; a detected one is refined
            for _ in range(self.model.config.recenter_passes):
                out = self._predict_centred(frames, camera, out.joints_uvd[:, self.convention.root])
        return out.frame(0) if single else out

    def _predict_centred(self, frames: np.ndarray, camera: Intrinsics, centers: Sequence) -> Prediction:
        """Frames (B, H, W) mm cropped around their centres (B of (3,) uvd, or None: detected)."""
        crops = [preprocess(f, camera, self.crop, c) for f, c in zip(frames, centers, strict=True)]
        return self.predict_crops(
            np.stack([c.depth for c in crops]), np.stack([c.com_uvd for c in crops]), camera
        )

    def predict_file(
        self,
        path: str | os.PathLike,
        camera: str,
        custom: tuple[float, float, float, float] | None = None,
        center: tuple[float, float, float] | None = None,
        limits: UploadLimits = DEFAULT_LIMITS,
    ) -> Prediction:
        """A depth file (`crossingnets.data.depth_file.load_depth`'s formats) -> its Prediction.

        camera: a preset ("nyu", "icvl", "msra") matching the frame's size, or "custom" with
        `custom` = (fx, fy, cx, cy) px; center: (u px, v px, d mm) read by `parse_center` (d <= 0:
        from the image), None or zeros to detect. Raises DepthImageError, NoHandError or
        ValueError, each naming what was wrong, for a message to the user.
        """
        depth = load_depth(path, limits)
        cam = camera_for(camera, depth.shape, custom)
        try:
            return self.predict(depth, cam, parse_center(center, depth))
        except NoHandError as err:
            raise NoHandError(f"depth image {Path(path).name}: {err}") from None

    @torch.inference_mode()
    def decode_latent(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """Latents (B, L) -> joints (B, J, 3) in mm relative to the crop centre: the public decoder
        (the model's pose units stay inside the model)."""
        return self.model.decode_latent(self._tensor(latent)).cpu().numpy()

    def _crossingnet(self, what: str) -> CrossingNet:
        if not isinstance(self.model, CrossingNet):
            raise TypeError(f"{what} needs a Crossing Net; this is a {self.model.kind} baseline")
        return self.model

    @torch.inference_mode()
    def generate_depth(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """Latents (B, L) -> generated crops (B, S, S) in [-1, 1], Gen(Ali(z))."""
        return self._crossingnet("generate_depth").render(self._tensor(latent))[:, 0].cpu().numpy()

    @torch.inference_mode()
    def smoothness_distance(self, crop_a: np.ndarray, crop_b: np.ndarray) -> np.ndarray:
        """smo(a, b) = f(a) - f(b) (B, L) for crops (B, S, S) or (B, 1, S, S): the smoothness head's
        estimate of z_a - z_b; its norm is the distance."""
        a, b = (self._tensor(c).reshape(-1, 1, *np.shape(c)[-2:]) for c in (crop_a, crop_b))
        return self._crossingnet("smoothness_distance").smoothness(a, b).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "images",
        nargs="+",
        help="depth frames: 16-bit PNG in mm, NYU RGB-encoded PNG, MSRA .bin, .npy in mm",
    )
    p.add_argument("--checkpoint", required=True, help="released model folder (or a run folder)")
    p.add_argument(
        "--camera",
        choices=sorted(CAMERAS),
        help="sensor intrinsics, matching the frames' size (default: the model's convention)",
    )
    p.add_argument(
        "--center",
        type=float,
        nargs=3,
        metavar=("U", "V", "D"),
        help="hand centre uvd; D <= 0 takes the depth from the image (default: detect)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")


def prediction_record(image: str | os.PathLike, pred: Prediction, convention: Convention) -> dict:
    """One frame's Prediction as `crossingnets predict` prints it: JSON-ready lists, 4 decimals."""
    arrays = {
        "joints_xyz": pred.joints_xyz_mm,
        "joints_uvd": pred.joints_uvd,
        "com_uvd": pred.center_uvd,
        "latent": pred.latent,
    }
    return {
        "image": str(image),
        "convention": convention.name,
        "joint_names": list(convention.joint_names),
        **{k: np.round(v.astype(float), 4).tolist() for k, v in arrays.items()},
    }


def main(args: argparse.Namespace) -> int:
    estimator = HandPoseEstimator.from_pretrained(args.checkpoint, args.device)
    camera = args.camera or estimator.convention.name
    for image in args.images:
        pred = estimator.predict_file(image, camera, center=args.center)
        print(json.dumps(prediction_record(image, pred, estimator.convention)))
    return 0
