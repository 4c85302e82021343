"""The pose VAE (paper Sec. 3.1): a 3J-d hand pose <-> a 20-d code, the pose half of the latent.

Poses are J joints relative to the root joint, flattened to (B, 3J), in units of
`pose_unit_mm` (50 mm in the authors' code). The shared latent z_y appends the root joint's
offset from the crop centre (3 numbers, same units) to the 20-d code: 23 dims in all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from crossingnets.pca import fit_pca

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


ROOT_DIMS = 3  # the root offset appended to the VAE code in the shared latent z_y


class PoseVAE(nn.Module):
    """Encoder FC(3J -> H, ReLU) + FC(H -> Z) mean / log-variance heads; decoder
    FC(Z -> H, LeakyReLU 0.01) -> FC(H -> 3J). No batch norm (authors' code)."""

    def __init__(self, pose_dims: int, pca_dims: int, code_dims: int, noise_std: float) -> None:
        super().__init__()
        self.noise_std = noise_std
        self.enc_fc = nn.Linear(pose_dims, pca_dims)
        self.enc_mean = nn.Linear(pca_dims, code_dims)
        self.enc_logvar = nn.Linear(pca_dims, code_dims)
        self.dec_fc = nn.Linear(code_dims, pca_dims)
        self.dec_out = nn.Linear(pca_dims, pose_dims)

    @torch.no_grad()
    def init_from_pca(self, poses: np.ndarray) -> PCA:
        """Initialise the two outer layers from a PCA of training poses (N, 3J).

        The encoder's first layer projects onto the components (weight = components,
        bias = -components @ mean); the decoder's last layer maps back (weight = components^T,
        bias = mean). With fewer poses than components, the remaining rows keep their
        random initialisation.
        """
        pca = fit_pca(poses, self.enc_fc.out_features)
        k = pca.n_components_
        comps = torch.as_tensor(pca.components_, dtype=torch.float32)  # (k, 3J)
        mean = torch.as_tensor(pca.mean_, dtype=torch.float32)  # (3J,)
        self.enc_fc.weight[:k] = comps
        self.enc_fc.bias[:k] = -comps @ mean
        self.dec_out.weight[:, :k] = comps.T
        self.dec_out.weight[:, k:] = 0.0
        self.dec_out.bias.copy_(mean)
        return pca

    def encode(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3J) pose -> mean (B, Z), log-variance (B, Z)."""
        h = torch.relu(self.enc_fc(pose))
        return self.enc_mean(h), self.enc_logvar(h)

    def sample(
        self, mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reparameterised code (B, Z): noise of std `noise_std` in training, the mean in eval."""
        if not self.training:
            return mean
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps * self.noise_std

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """(B, Z) code -> (B, 3J) pose."""
        return self.dec_out(nn.functional.leaky_relu(self.dec_fc(code), 0.01))

    def forward(
        self, pose: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3J) pose -> reconstruction (B, 3J), mean (B, Z), log-variance (B, Z)."""
        mean, logvar = self.encode(pose)
        return self.decode(self.sample(mean, logvar, generator)), mean, logvar

    def encode_latent(self, pose: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        """Deterministic shared latent z_y (B, Z + 3): the code's mean and the root offset (B, 3)."""
        return torch.cat([self.encode(pose)[0], root], dim=1)

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, Z + 3) latent -> (B, J, 3) joints relative to the crop centre, pose units."""
        pose = self.decode(latent[:, :-ROOT_DIMS]).unflatten(1, (-1, 3))
        return pose + latent[:, None, -ROOT_DIMS:]
