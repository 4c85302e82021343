"""The discriminator: a shared convolutional trunk and three heads (paper Sec. 3.3).

Heads: real/fake (GAN), posterior (estimates the latent z_y, hence the pose) and smoothness
(an embedding f with smo(a, b) = f(a) - f(b) ~ z_a - z_b). Every convolution: kernel 6,
stride 2, padding 2, no bias, BatchNorm, LeakyReLU 0.2 (authors' code).
"""

from __future__ import annotations

import torch
from torch import nn

from crossingnets.models.generator import KERNEL_PX, PADDING, STRIDE

LEAK = 0.2  # LeakyReLU slope of the discriminator (authors' code)


def down_blocks(in_channels: int, channels: int, num_layers: int) -> nn.Sequential:
    """`num_layers` x (Conv k6 s2 p2, no bias) + BN + LeakyReLU; each halves the side."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        layers += [
            nn.Conv2d(in_channels if i == 0 else channels, channels, KERNEL_PX, STRIDE, PADDING, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(LEAK, inplace=True),
        ]
    return nn.Sequential(*layers)


def mlp(in_dims: int, hidden_dims: int, out_dims: int) -> nn.Sequential:
    """FC + BN + LeakyReLU + FC, the posterior and smoothness heads' top."""
    return nn.Sequential(
        nn.Linear(in_dims, hidden_dims),
        nn.BatchNorm1d(hidden_dims),
        nn.LeakyReLU(LEAK, True),
        nn.Linear(hidden_dims, out_dims),
    )


class ConvHead(nn.Module):
    """Down-blocks from the trunk's map to (C, f, f), flattened to F = C*f*f, then `top`."""

    def __init__(self, channels: int, num_layers: int, top: nn.Module) -> None:
        super().__init__()
        self.convs = down_blocks(channels, channels, num_layers)
        self.top = top

    def forward_features(self, trunk_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, h) trunk map -> (B, F) last conv features."""
        return self.convs(trunk_map).flatten(1)

    def forward(self, trunk_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, h) -> (B, out) of `top`."""
        return self.top(self.forward_features(trunk_map))


class ThreeHeads(nn.Module):
    """A trunk shared by three heads (`trunk`, `gan`, `posterior`, `smoothness`, each built by the
    subclass; a head has `forward_features` and `top`): the interface every discriminator offers."""

    trunk: nn.Module
    gan: nn.Module
    posterior: nn.Module
    smoothness: nn.Module

    def forward_trunk(self, depth: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) crop -> (B, C, h, h) shared map."""
        return self.trunk(depth)

    def forward_gan(self, trunk_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trunk map -> real/fake logits (B,) and the last conv features (B, F)."""
        features = self.gan.forward_features(trunk_map)
        return self.gan.top(features).squeeze(1), features

    def forward_posterior(self, trunk_map: torch.Tensor) -> torch.Tensor:
        """Trunk map -> estimated latent z_y (B, L)."""
        return self.posterior(trunk_map)

    def forward_smoothness(self, trunk_map: torch.Tensor) -> torch.Tensor:
        """Trunk map -> smoothness embedding f (B, L)."""
        return self.smoothness(trunk_map)

    def forward(self, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) crop -> every head: real/fake logits (B,), latent (B, L), embedding (B, L)."""
        h = self.forward_trunk(depth)
        return self.forward_gan(h)[0], self.forward_posterior(h), self.forward_smoothness(h)


class Discriminator(ThreeHeads):
    """Trunk (B, 1, S, S) -> (B, C, S/4, S/4) for 2 trunk layers; heads down to (C, f, f).

    Paper preset: C = 32, S = 128, f = 4, F = 512, latent L = 23, smoothness hidden 512.
    """

    def __init__(
        self,
        channels: int,
        trunk_layers: int,
        head_layers: int,
        feature_dims: int,
        latent_dims: int,
        smo_hidden: int,
    ) -> None:
        super().__init__()
        self.trunk = down_blocks(1, channels, trunk_layers)
        self.gan = ConvHead(channels, head_layers, nn.Linear(feature_dims, 1))
        self.posterior = ConvHead(channels, head_layers, mlp(feature_dims, latent_dims, latent_dims))
        self.smoothness = ConvHead(channels, head_layers, mlp(feature_dims, smo_hidden, latent_dims))
