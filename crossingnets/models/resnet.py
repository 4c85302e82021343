"""Residual networks of the release architecture: a discriminator whose posterior head is deeper
than the trunk the generated crops go through, and an upsampling generator.

The paper's networks (32 channels everywhere, kernel-6 stride-2 convolutions) learned too slowly
on 2 CPU cores (issue 11: 42.5 mm after a 27-minute run). A pre-activation-free ResNet
(He et al. 2016) gives the posterior head capacity where it pays, while the GAN and smoothness
heads stay light, so the adversarial terms cost a fraction of a step.
"""

from __future__ import annotations

import torch
from torch import nn

from crossingnets import losses as L
from crossingnets.models.discriminator import ThreeHeads, mlp
from crossingnets.models.generator import DepthGenerator, RenderTarget


class ResidualBlock(nn.Module):
    """conv3x3(stride) + BN + ReLU + conv3x3 + BN, plus the input (1x1 conv when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and in_channels == channels
            else nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C, H / stride, W / stride)."""
        return torch.relu(self.body(x) + self.skip(x))


def down_path(in_channels: int, widths: list[int], blocks_per_width: int = 1) -> nn.Sequential:
    """Per entry of `widths`, a stride-2 residual block and `blocks_per_width` - 1 of stride 1."""
    blocks, c = [], in_channels
    for w in widths:
        blocks += [ResidualBlock(c, w, stride=2)] + [ResidualBlock(w, w) for _ in range(blocks_per_width - 1)]
        c = w
    return nn.Sequential(*blocks)


class ResNetHead(nn.Module):
    """Residual blocks down to (C, f, f) (`down_path`), flattened to F = C*f*f, then `top`."""

    def __init__(
        self, in_channels: int, widths: list[int], top: nn.Module, blocks_per_width: int = 1
    ) -> None:
        super().__init__()
        self.convs = down_path(in_channels, widths, blocks_per_width)
        self.top = top

    def forward_features(self, trunk_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, h) -> (B, F)."""
        return self.convs(trunk_map).flatten(1)

    def forward(self, trunk_map: torch.Tensor) -> torch.Tensor:
        return self.top(self.forward_features(trunk_map))


class ResNetDiscriminator(ThreeHeads):
    """Trunk (B, 1, S, S) -> (B, 2w, S/4, S/4); heads of stride-2 blocks down to (C, 4, 4).

    Posterior head: widths 4w, 8w, ..., `posterior_blocks` residual blocks at each (r6 fits its
    training crops no better than its test crops, so more capacity was tried: 2 blocks tied 1 at
    equal wall time, BENCHMARKS), and a wide FC; GAN and smoothness heads: 2w throughout, one block
    each. The interface of `ThreeHeads`.
    """

    def __init__(
        self,
        width: int,
        crop_px: int,
        latent_dims: int,
        posterior_hidden: int,
        smo_hidden: int,
        posterior_blocks: int = 1,
        stem: str = "strided",
    ) -> None:
        super().__init__()
        w = width
        self.trunk, self.posterior = posterior_network(
            w, crop_px, latent_dims, posterior_hidden, posterior_blocks, stem
        )
        light = [2 * w] * _halvings(crop_px // 4, 4)
        self.gan = ResNetHead(2 * w, light, nn.Linear(2 * w * 16, 1))
        self.smoothness = ResNetHead(2 * w, light, mlp(2 * w * 16, smo_hidden, latent_dims))


STEMS = ("strided", "full", "residual")


def posterior_network(
    width: int, crop_px: int, out_dims: int, hidden: int, blocks: int = 1, stem: str = "strided"
) -> tuple[nn.Sequential, ResNetHead]:
    """The release networks' path from a crop to an estimate: the trunk (B, 1, S, S) -> (B, 2w, S/4,
    S/4) and the posterior head (residual blocks of widths 4w, 8w, ... up to 16w, `blocks` at each,
    down to 4 x 4, and a wide FC) -> (B, out_dims). The discriminator's and the baselines'."""
    trunk = nn.Sequential(*stem_layers(stem, width), ResidualBlock(width, 2 * width, 2))
    widths = [min(4 * width * 2**i, 16 * width) for i in range(_halvings(crop_px // 4, 4))]
    return trunk, ResNetHead(2 * width, widths, mlp(widths[-1] * 16, hidden, out_dims), blocks)


def stem_layers(stem: str, w: int) -> list[nn.Module]:
    """(B, 1, S, S) -> (B, w, S/2, S/2). `strided` (r1-r6): one conv3x3 / 2. `full`: a conv3x3 at the
    crop's resolution (w/2 channels) before it; `residual`: a residual block after it, at S/2.
    Fingers are 3-4 px wide at 64 px and the fingertips carry r6's error (BENCHMARKS): the two
    spend their extra compute where they are still visible. `stem` is one of STEMS (the model
    config checks it)."""
    layers: list[nn.Module] = []
    c = 1
    if stem == "full":
        layers += [nn.Conv2d(1, w // 2, 3, 1, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(inplace=True)]
        c = w // 2
    layers += [nn.Conv2d(c, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
    return layers + ([ResidualBlock(w, w)] if stem == "residual" else [])


def _halvings(size: int, target: int) -> int:
    n = 0
    while size > target:
        size //= 2
        n += 1
    if size != target:
        raise ValueError(f"crop side must be 4 * 4 * 2^k px, got a trunk map of {size * 2**n} px")
    return n


class UpsamplingGenerator(DepthGenerator):
    """tanh(latent) -> FC -> (8w, 4, 4) -> [nearest x2, conv3x3, BN, ReLU] halving the width down to
    w -> conv3x3 -> a depth channel and a hand-mask channel (B, 2, S, S), composed into a crop.

    Nearest upsampling + conv avoids the checkerboard of transposed convolutions (Odena et al.
    2016). The mask decides hand vs background with a cross-entropy, so an uncertain silhouette
    is not blurred into the background's depth as an L1 on one channel does (issue 11: fingers)."""

    def __init__(self, latent_dims: int, width: int, crop_px: int, mask: bool = True) -> None:
        super().__init__()
        self.mask = mask  # False: one depth channel (release run r1's generator)
        n_up = _halvings(crop_px, 4)
        widths = [max(8 * width // 2**i, width) for i in range(n_up + 1)]
        self.first = widths[0]
        self.fc = nn.Sequential(
            nn.Linear(latent_dims, widths[0] * 16, bias=False), nn.BatchNorm1d(widths[0] * 16), nn.ReLU(True)
        )
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.Upsample(scale_factor=2),
                nn.Conv2d(a, b, 3, 1, 1, bias=False),
                nn.BatchNorm2d(b),
                nn.ReLU(True),
            ]
        self.up = nn.Sequential(*layers)
        self.out = nn.Conv2d(widths[-1], 2 if mask else 1, 3, 1, 1)

    def _forward_maps(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.tanh(latent)).view(-1, self.first, 4, 4)
        return self.out(self.up(h))

    def forward_parts(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> hand depth in (-1, 1) and hand-mask logits, each (B, 1, S, S)."""
        if not self.mask:
            raise ValueError("this generator draws no hand mask (gen_mask is False)")
        out = self._forward_maps(latent)
        return torch.tanh(out[:, :1]), out[:, 1:]

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, 1, S, S) crop in (-1, 1]: the depth where the mask says hand, else background."""
        if not self.mask:
            return torch.tanh(self._forward_maps(latent))
        return compose(*self.forward_parts(latent), hard=not self.training)

    def render_with_loss(
        self, aligned: torch.Tensor, target: RenderTarget
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """With the mask: its cross-entropy and the depth's L1 on the hand (`masked_render_loss`)."""
        if not self.mask:
            return super().render_with_loss(aligned, target)
        depth, mask = self.forward_parts(aligned)
        b = len(target.crops)
        return compose(depth, mask), L.masked_render_loss(depth[:b], mask[:b], target.crops)


def compose(depth: torch.Tensor, mask_logits: torch.Tensor, hard: bool = False) -> torch.Tensor:
    """Depth and mask (B, 1, S, S) over the background +1. Soft in training (differentiable, so the
    discriminator's gradients reach both channels); hard at inference, where the mask decides each
    pixel (a soft edge would draw a grey halo of half-background depths around the hand)."""
    if hard:
        return torch.where(mask_logits > 0, depth, torch.ones_like(depth))
    m = torch.sigmoid(mask_logits)
    return m * depth + (1.0 - m)
