"""Pose estimation with released weights, and the `crossingnets predict` command.

`HandPoseEstimator.from_pretrained(path).predict(depth_mm, intrinsics)` runs the shared
preprocessing (hand centre, metric-cube crop) and the network's inference path (trunk ->
posterior head -> VAE decoder), and returns joints in camera-frame mm and in uvd. The app's
latent-space tools (`decode_latent`, `generate_depth`, `smoothness_distance`) live here too.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossingnets.camera import CAMERAS, Intrinsics, get_camera, uvd_to_xyz, xyz_to_uvd
from crossingnets.checkpoint import WEIGHTS_FILE, LatentStats, load_latent_stats
from crossingnets.data.preprocess import CropConfig, preprocess
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
        return self.model.config.crop

    @property
    def convention(self) -> Convention:
        return get_convention(self.model.config.convention)

    def _tensor(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32).to(self.device)

    @torch.inference_mode()
    def predict_crops(
        self, depth: np.ndarray | torch.Tensor, com_uvd: np.ndarray, cam: Intrinsics, batch_size: int = 256
    ) -> dict[str, np.ndarray]:
        """Network crops (B, 1, S, S) (or (B, S, S)) in [-1, 1] with their centres com_uvd (B, 3).

        Runs `batch_size` crops at a time (a whole test set fits in memory as crops, not as
        activations). Returns float32 arrays: joints_xyz (B, J, 3) camera-frame mm, joints_uvd
        (B, J, 3), com_uvd (B, 3), latent (B, L).
        """
        x = torch.as_tensor(depth, dtype=torch.float32)  # moved to the device chunk by chunk
        if x.ndim == 3:
            x = x[:, None]
        s = self.crop.crop_px
        if x.ndim != 4 or x.shape[1:] != (1, s, s):
            raise ValueError(f"crops must have shape (B, 1, {s}, {s}), got {tuple(x.shape)}")
        com_uvd = np.asarray(com_uvd, dtype=np.float64).reshape(-1, 3)
        if len(com_uvd) != len(x):
            raise ValueError(f"got {len(x)} crops but {len(com_uvd)} centres")
        chunks = [self.model(x[i : i + batch_size].to(self.device)) for i in range(0, len(x), batch_size)]
        joints_mm, latent = (torch.cat(parts).cpu().numpy() for parts in zip(*chunks, strict=True))
        joints_xyz, joints_uvd = joints_from_crop_frame(joints_mm, com_uvd, cam)
        return {
            "joints_xyz": joints_xyz,
            "joints_uvd": joints_uvd,
            "com_uvd": com_uvd.astype(np.float32),
            "latent": latent,
        }

    def predict(
        self, depth_mm: np.ndarray, intrinsics: Intrinsics, center: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Raw depth frame(s) in mm, (H, W) or (B, H, W), 0 = missing -> the `predict_crops` dict,
        without the batch axis for a single frame. `center` (3,) or (B, 3) uvd skips detection."""
        depth_mm = np.asarray(depth_mm)
        single = depth_mm.ndim == 2
        frames = depth_mm[None] if single else depth_mm
        if frames.ndim != 3:
            raise ValueError(f"depth must be (H, W) or (B, H, W) in mm, got shape {depth_mm.shape}")
        centers = (
            [None] * len(frames) if center is None else np.asarray(center, float).reshape(len(frames), 3)
        )
        crops = [preprocess(f, intrinsics, self.crop, c) for f, c in zip(frames, centers, strict=True)]
        out = self.predict_crops(
            np.stack([c.depth for c in crops]), np.stack([c.com_uvd for c in crops]), intrinsics
        )
        return {k: v[0] for k, v in out.items()} if single else out

    @torch.inference_mode()
    def decode_latent(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """Latents (B, L) -> joints (B, J, 3) in mm relative to the crop centre."""
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
        "images", nargs="+", help="depth frames: 16-bit PNG in mm, NYU RGB-encoded PNG, .npy in mm"
    )
    p.add_argument("--checkpoint", required=True, help="released model folder (or a run folder)")
    p.add_argument(
        "--camera", choices=sorted(CAMERAS), help="sensor intrinsics (default: the model's convention)"
    )
    p.add_argument(
        "--center", type=float, nargs=3, metavar=("U", "V", "D"), help="hand centre uvd (default: detect)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")


def predict_file(
    estimator: HandPoseEstimator, path: str | os.PathLike, cam: Intrinsics, center: Any = None
) -> dict:
    """Read one depth image and return its prediction as JSON-ready lists."""
    from crossingnets.data.depth_file import load_depth

    out = estimator.predict(load_depth(path), cam, None if center is None else np.asarray(center))
    return {
        "image": str(path),
        "convention": estimator.convention.name,
        "joint_names": list(estimator.convention.joint_names),
        **{k: np.round(v.astype(float), 4).tolist() for k, v in out.items()},
    }


def main(args: argparse.Namespace) -> int:
    estimator = HandPoseEstimator.from_pretrained(args.checkpoint, args.device)
    cam = get_camera(args.camera or estimator.convention.name)
    for image in args.images:
        print(json.dumps(predict_file(estimator, image, cam, args.center)))
    return 0
