"""The depth generator and the alignment layer Ali (paper Sec. 3.2-3.3), and what the Crossing Net
asks of any generator (`DepthGenerator`).

Every (transposed) convolution of the Crossing Net uses kernel 6, stride 2, padding 2
(authors' code), which exactly doubles (halves) the spatial side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from crossingnets import losses as L

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


@dataclass(frozen=True)
class RenderTarget:
    """A batch of labelled poses a generator learns to draw: what each generator's loss reads."""

    crops: torch.Tensor  # (B, 1, S, S) the real crops in [-1, 1], background +1
    joints_mm: torch.Tensor  # (B, J, 3) their joints, camera frame
    center_mm: torch.Tensor  # (B, 3) their crop centres, camera frame
    unit_mm: float  # the pose unit (the kinematic generator's joint loss is in it)
    cube_mm: float  # the crop cube's side (where a crop shows its joints)
    fg_weight: float  # the weighted L1's weight of hand pixels (`recons_fg_weight`)
    w_keypoints: float  # the skeleton generator's keypoint term (`w_keypoints`)


class DepthGenerator(nn.Module):
    """A generator as the Crossing Net uses it: Ali's latents (B', L) -> crops (B', 1, S, S), and
    its own render loss against a `RenderTarget` of the first B latents (the others: mixtures).
    The base draws one depth channel learnt by the paper's weighted L1."""

    trains_by_gan = True  # the gan stage can train it (a drawing without gradient cannot)
    fixed_align_statistics = False  # Ali's batch norm kept in eval mode before it (CrossingNet.train)

    def render(self, aligned: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, 1, S, S) crops; drawn as seen around `center_mm` (B, 3), camera frame,
        by a generator that knows where the crop sits (None: on the optical axis)."""
        return self(aligned)

    def render_with_loss(
        self, aligned: torch.Tensor, target: RenderTarget
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The crops of all the latents (around the target's centres, repeated) and the render
        loss of the first len(target.crops)."""
        rendered = self.render(aligned)
        b = len(target.crops)
        return rendered, L.weighted_l1_reconstruction_loss(rendered[:b], target.crops, target.fg_weight)

    def render_loss(self, aligned: torch.Tensor, target: RenderTarget) -> torch.Tensor:
        """`render_with_loss`' loss alone, where the crops are not needed."""
        return self.render_with_loss(aligned, target)[1]


def _up_block(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels, KERNEL_PX, STRIDE, PADDING, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class Generator(DepthGenerator):
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
