"""The depth generator and the alignment layer Ali (paper Sec. 3.2-3.3).

Every (transposed) convolution of the Crossing Net uses kernel 6, stride 2, padding 2
(authors' code), which exactly doubles (halves) the spatial side.
"""

from __future__ import annotations

import math

import torch
from torch import nn

KERNEL_PX, STRIDE, PADDING = 6, 2, 2


def num_resamplings(crop_px: int, feature_px: int) -> int:
    """How many x2 steps lead from `feature_px` to `crop_px` (5 for 4 -> 128)."""
    n = round(math.log2(crop_px / feature_px))
    if n < 1 or feature_px * 2**n != crop_px:
        raise ValueError(f"crop_px {crop_px} must be feature_px {feature_px} times a power of 2")
    return n


class LatentAlign(nn.Module):
    """Ali: FC(L -> L) + BatchNorm, mapping the pose latent z_y to the generator's latent."""

    def __init__(self, latent_dims: int) -> None:
        super().__init__()
        self.fc = nn.Linear(latent_dims, latent_dims)
        self.bn = nn.BatchNorm1d(latent_dims)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L)."""
        return self.bn(self.fc(latent))


def _up_block(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels, KERNEL_PX, STRIDE, PADDING, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class Generator(nn.Module):
    """tanh(latent) -> FC(L -> C*f*f) + BN + ReLU -> (C, f, f) -> x2 up-blocks -> tanh crop.

    Paper preset: L = 23, C = 32, f = 4, four ConvTranspose(32 -> 32) + BN + ReLU (4 -> 64 px)
    and a last ConvTranspose(32 -> 1) with tanh (64 -> 128 px).
    """

    def __init__(self, latent_dims: int, channels: int, feature_px: int, crop_px: int) -> None:
        super().__init__()
        self.channels, self.feature_px = channels, feature_px
        width = channels * feature_px * feature_px
        self.fc = nn.Sequential(
            nn.Linear(latent_dims, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(True)
        )
        n_up = num_resamplings(crop_px, feature_px)
        self.up = nn.Sequential(*(_up_block(channels) for _ in range(n_up - 1)))
        self.out = nn.ConvTranspose2d(channels, 1, KERNEL_PX, STRIDE, PADDING)

    def forward_features(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) latent -> (B, C, f, f) first feature map."""
        h = self.fc(torch.tanh(latent))
        return h.view(-1, self.channels, self.feature_px, self.feature_px)

    def forward_upsample(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, f, f) -> (B, 1, S, S) depth crop in (-1, 1)."""
        return torch.tanh(self.out(self.up(features)))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) latent -> (B, 1, S, S) depth crop in (-1, 1)."""
        return self.forward_upsample(self.forward_features(latent))
