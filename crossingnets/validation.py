"""What the trainer measures of a model: the validation joint errors after each epoch, and the
statistics of the training latents released with its weights after each stage."""

from __future__ import annotations

import numpy as np
import torch

from crossingnets.data.training import Frames, TrainData
from crossingnets.models import LatentPoseModel
from crossingnets.pca import LatentStats


@torch.no_grad()
def validate(
    model: LatentPoseModel,
    frames: Frames,
    memory_format: torch.memory_format = torch.contiguous_format,
    batch: int = 256,
) -> dict[str, float]:
    """Mean 3D joint error in mm over `frames` of each of the model's validation estimates
    (`val_mm` for the estimation path; `val_vae_mm` for the pose VAE's own reconstruction)."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    for s in range(0, len(frames), batch):
        f = frames.subset(np.arange(s, min(s + batch, len(frames))))
        truth = f.joints_xyz.to(device)
        center = f.center_xyz.to(device)[:, None]
        depth = f.depth.to(device, memory_format=memory_format)
        for k, joints in model.validation_joints(depth, f.pose.to(device), f.root.to(device)).items():
            error = (joints.float() + center - truth).norm(dim=-1).mean(-1).sum().item()
            sums[k] = sums.get(k, 0.0) + error
    return {k: v / len(frames) for k, v in sums.items()}


@torch.no_grad()
def latent_stats(model: LatentPoseModel, data: TrainData) -> LatentStats:
    """PCA and spread of the latents of the labeled training poses (what the generator learnt)."""
    model.eval()
    device = next(model.parameters()).device
    i = data.labeled
    latents = model.encode_pose(data.train.pose[i].to(device), data.train.root[i].to(device))
    return LatentStats.fit(latents.float().cpu().numpy())
