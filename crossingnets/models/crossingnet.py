"""The composed Crossing Net (Wan et al., CVPR 2017) and the config shared by the model family.

Data flow (paper Fig. 2): pose -> PoseVAE code + root offset = z_y -> Ali -> Generator -> depth
crop; depth crop -> Discriminator trunk -> posterior head -> z_y -> VAE decoder -> pose.
Inference needs only the second path.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from crossingnets.checkpoint import PretrainedMixin
from crossingnets.data.preprocess import CropConfig
from crossingnets.hand.conventions import get_convention
from crossingnets.models.discriminator import Discriminator
from crossingnets.models.generator import Generator, LatentAlign, num_resamplings
from crossingnets.models.pose_vae import ROOT_DIMS, PoseVAE

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


@dataclass(frozen=True)
class CrossingNetConfig:
    convention: str = "nyu"  # joint convention of the training store: sets J and the root joint
    crop_px: int = 128  # input crop side, px (paper: 128); taken from the training store
    cube_mm: float = 250.0  # side of the metric crop cube, mm; taken from the training store
    pose_unit_mm: float = 50.0  # poses and root offsets are expressed in this unit (authors' code)
    pca_dims: int = 40  # width of the VAE's outer layers, initialised by a PCA of poses (paper: 40)
    code_dims: int = 20  # VAE code; the shared latent z_y appends the 3-d root offset (paper: 20)
    vae_noise_std: float = 0.05  # std of the VAE's reparameterisation noise (authors' code)
    feature_px: int = 4  # side of the generator's first and the discriminator heads' last maps
    gen_channels: int = 32  # channels of every generator feature map (paper: 32)
    disc_channels: int = 32  # channels of every discriminator feature map (paper: 32)
    trunk_layers: int = 2  # discriminator convolutions shared by the three heads (paper: 2)
    smo_hidden: int = 512  # hidden width of the smoothness head (paper: 512)
    prior_dims: int = 30  # DeepPrior baseline only: components of its PCA pose prior (DeepPrior: 30)

    def __post_init__(self) -> None:
        get_convention(self.convention)
        if self.head_layers < 1:
            raise ValueError(
                f"crop_px {self.crop_px} leaves no head layer after {self.trunk_layers} trunk layers "
                f"down to feature_px {self.feature_px}"
            )

    @property
    def num_joints(self) -> int:
        return get_convention(self.convention).num_joints

    @property
    def root_joint(self) -> int:
        return get_convention(self.convention).root

    @property
    def pose_dims(self) -> int:
        return 3 * self.num_joints

    @property
    def latent_dims(self) -> int:
        """Size of the shared latent z_y (paper: 20 + 3 = 23)."""
        return self.code_dims + ROOT_DIMS

    @property
    def head_layers(self) -> int:
        """Convolutions of each discriminator head (paper: 5 halvings - 2 trunk = 3)."""
        return num_resamplings(self.crop_px, self.feature_px) - self.trunk_layers

    @property
    def feature_dims(self) -> int:
        """Flattened size of the heads' last conv map (paper: 32 * 4 * 4 = 512)."""
        return self.disc_channels * self.feature_px**2

    @property
    def crop(self) -> CropConfig:
        return CropConfig(cube_mm=self.cube_mm, crop_px=self.crop_px)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrossingNetConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}")
        return cls(**d)


PRESETS: dict[str, CrossingNetConfig] = {
    "paper": CrossingNetConfig(),  # exactly the paper's / authors' architecture
    "tiny": CrossingNetConfig(  # for tests: 32 px crops, a few channels
        crop_px=32, pca_dims=12, gen_channels=8, disc_channels=8, smo_hidden=32, prior_dims=8
    ),
}


def model_config(preset: str, **data: Any) -> CrossingNetConfig:
    """A preset with the fields set by the data (convention, crop_px, cube_mm)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; expected one of {sorted(PRESETS)}")
    return replace(PRESETS[preset], **data)


class LatentPoseModel(PretrainedMixin, nn.Module):
    """Common inference interface: depth crop -> latent -> joints in mm around the crop centre."""

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__()
        self.config = config

    def estimate_latent(self, depth: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) crop in [-1, 1] -> (B, L) latent."""
        raise NotImplementedError

    def encode_pose(self, pose: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        """Pose (B, 3J) relative to the root and root offset (B, 3), pose units -> (B, L) latent."""
        raise NotImplementedError

    def decode_latent_units(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) latent -> (B, J, 3) joints relative to the crop centre, pose units."""
        raise NotImplementedError

    def init_from_pca(self, poses: np.ndarray) -> PCA:
        """Initialise the pose layers from training poses (N, 3J), pose units."""
        raise NotImplementedError

    @property
    def depth_reader(self) -> nn.Module:
        """The layers that read depth crops; its forward runs all of them (for batch-norm statistics)."""
        return self

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) latent -> (B, J, 3) joints relative to the crop centre, mm."""
        return self.decode_latent_units(latent) * self.config.pose_unit_mm

    def forward(self, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) crop -> joints (B, J, 3) mm relative to the crop centre, latent (B, L)."""
        latent = self.estimate_latent(depth)
        return self.decode_latent(latent), latent


class VAELatentModel(LatentPoseModel):
    """A model whose latent is the pose VAE's z_y (the Crossing Net and the scratch baseline)."""

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__(config)
        self.vae = PoseVAE(config.pose_dims, config.pca_dims, config.code_dims, config.vae_noise_std)

    def encode_pose(self, pose: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        return self.vae.encode_latent(pose, root)

    def decode_latent_units(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode_latent(latent)

    def init_from_pca(self, poses: np.ndarray) -> PCA:
        return self.vae.init_from_pca(poses)


class CrossingNet(VAELatentModel):
    """Pose VAE + Ali + Generator + Discriminator sharing the latent z_y (B, 23 in the paper)."""

    kind = "crossingnet"

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__(config)
        c = config
        self.align = LatentAlign(c.latent_dims)
        self.generator = Generator(c.latent_dims, c.gen_channels, c.feature_px, c.crop_px)
        self.discriminator = Discriminator(
            c.disc_channels, c.trunk_layers, c.head_layers, c.feature_dims, c.latent_dims, c.smo_hidden
        )

    def estimate_latent(self, depth: torch.Tensor) -> torch.Tensor:
        d = self.discriminator
        return d.forward_posterior(d.forward_trunk(depth))

    @property
    def depth_reader(self) -> nn.Module:
        return self.discriminator

    def render(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) pose latent z_y -> (B, 1, S, S) generated crop, Gen(Ali(z_y))."""
        return self.generator(self.align(latent))

    def smoothness(self, depth_a: torch.Tensor, depth_b: torch.Tensor) -> torch.Tensor:
        """smo(a, b) = f(a) - f(b) (B, L) for crops (B, 1, S, S), which estimates z_a - z_b."""
        d = self.discriminator
        return d.forward_smoothness(d.forward_trunk(depth_a)) - d.forward_smoothness(d.forward_trunk(depth_b))
