"""Baselines sharing the Crossing Net's discriminator trunk, trained on labeled frames only.

- `ScratchRegressor`: the paper's "from scratch": trunk + posterior head, trained only with L_pos
  against the pose VAE's encoding (no GAN, no generator); stages `vae`, then `supervised`;
- `DeepPriorRegressor`: DeepPrior (Oberweger et al., 2015): the trunk regresses the coefficients of a
  linear PCA pose prior (plus the root offset); the loss is on the reconstructed joints; one
  `supervised` stage. With the release networks (`arch` resnet) it is the Crossing Net's own
  path from crop to estimate (`posterior_network`) and learns by the release's joint loss, so that
  it differs from the supervised control only by its prior: a linear one instead of the VAE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from crossingnets import losses as L
from crossingnets.models.base import CrossingNetConfig, LatentPoseModel, TrainStep
from crossingnets.models.crossingnet import VAELatentModel
from crossingnets.models.discriminator import ConvHead, down_blocks, mlp
from crossingnets.models.pose_vae import ROOT_DIMS
from crossingnets.models.resnet import posterior_network
from crossingnets.pca import fit_pca

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


def _trunk(c: CrossingNetConfig) -> nn.Sequential:
    return down_blocks(1, c.disc_channels, c.trunk_layers)


class ScratchRegressor(VAELatentModel):
    """Depth crop (B, 1, S, S) -> trunk -> posterior head -> z_y (B, 23) -> VAE decoder."""

    kind = "scratch"
    stages = ("vae", "supervised")

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__(config)
        c = config
        self.trunk = _trunk(c)
        self.posterior = ConvHead(
            c.disc_channels, c.head_layers, mlp(c.feature_dims, c.latent_dims, c.latent_dims)
        )

    def estimate_latent(self, depth: torch.Tensor) -> torch.Tensor:
        return self.posterior(self.trunk(depth))

    def param_groups(self, stage: str) -> dict[str, list[nn.Parameter]]:
        if stage == "supervised":  # every layer but the pose VAE, trained in the `vae` stage
            vae = set(map(id, self.vae.parameters()))
            return {"estimator": [p for p in self.parameters() if id(p) not in vae]}
        return super().param_groups(stage)

    def step_supervised(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """L_pos against the pose VAE's encoding of the labels."""
        lab = step.batch("labeled")
        estimate = self.estimate_latent(lab["depth"])
        with torch.no_grad():
            target = self.encode_pose(lab["pose"], lab["root"])
        out = {"pos": L.posterior_loss(estimate, target)}
        step.optimise("estimator", out["pos"])
        return out


class DeepPriorRegressor(LatentPoseModel):
    """Depth crop -> trunk -> head -> K prior coefficients + root offset (B, K + 3) -> joints."""

    kind = "deepprior"
    stages = ("supervised",)
    pca_stages = ("supervised",)

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__(config)
        c = config
        out = c.prior_dims + ROOT_DIMS
        if c.arch == "resnet":
            self.trunk, self.head = posterior_network(
                c.width, c.crop_px, out, c.posterior_hidden, c.posterior_blocks, c.stem
            )
        else:
            self.trunk = _trunk(c)
            self.head = ConvHead(c.disc_channels, c.head_layers, mlp(c.feature_dims, c.smo_hidden, out))
        self.register_buffer("prior_components", torch.zeros(c.prior_dims, c.pose_dims))  # (K, 3J)
        self.register_buffer("prior_mean", torch.zeros(c.pose_dims))  # (3J,)

    @torch.no_grad()
    def init_from_pca(self, poses: np.ndarray) -> PCA:
        pca = fit_pca(poses, self.config.prior_dims)
        k = pca.n_components_
        self.prior_components.zero_()
        self.prior_components[:k] = torch.as_tensor(pca.components_, dtype=torch.float32)
        self.prior_mean.copy_(torch.as_tensor(pca.mean_, dtype=torch.float32))
        return pca

    def estimate_latent(self, depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(depth))

    def encode_pose(self, pose: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        return torch.cat([(pose - self.prior_mean) @ self.prior_components.T, root], dim=1)

    def decode_latent_units(self, latent: torch.Tensor) -> torch.Tensor:
        coeffs, root = latent[:, :-ROOT_DIMS], latent[:, -ROOT_DIMS:]
        pose = (coeffs @ self.prior_components + self.prior_mean).unflatten(1, (-1, 3))
        return pose + root[:, None, :]

    def param_groups(self, stage: str) -> dict[str, list[nn.Parameter]]:
        if stage == "supervised":
            return {"estimator": list(self.parameters())}
        return super().param_groups(stage)

    def step_supervised(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """The error of the joints (B, J, 3) decoded from the estimated prior coefficients: squared
        (DeepPrior's) with the paper's networks, the release's smooth-L1 with its own."""
        lab = step.batch("labeled")
        joints = lab["pose"].unflatten(1, (-1, 3)) + lab["root"][:, None]
        decoded = self.decode_latent_units(self.estimate_latent(lab["depth"]))
        if self.config.arch == "resnet":
            name, loss = "joints", L.joint_loss(decoded, joints, step.cfg.joints_beta)
        else:
            name, loss = "pose", L.pose_loss(decoded, joints)
        step.optimise("estimator", loss)
        return {name: loss}
