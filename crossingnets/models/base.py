"""What every model of the family shares: its config, the registry of model kinds, and the common
interface: inference (depth crop -> latent -> joints), released weights, and training.

Training: a model names its `stages`, each stage's optimiser groups (`param_groups`) and its
named losses (`step_<stage>`, called through `training_step`); the trainer runs them in order
without knowing which model it trains. To add a stage: a name in `stages`, a branch of
`param_groups`, a `step_<stage>` method, and an `epochs_<stage>` field of the training config.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from crossingnets.checkpoint import read_pretrained_config, read_pretrained_weights, write_pretrained
from crossingnets.hand.conventions import get_convention
from crossingnets.models.generator import num_resamplings
from crossingnets.models.pose_vae import ROOT_DIMS
from crossingnets.models.resnet import STEMS
from crossingnets.pca import LatentStats

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


ARCHS = ("paper", "resnet")
# resnet generators: models/resnet.py, models/skeleton.py, models/kinematic.py
GEN_ARCHS = ("upsampling", "skeleton", "kinematic")


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
    arch: str = "paper"  # networks: paper (the authors' kernel-6 convolutions) | resnet (models/resnet.py)
    width: int = 16  # resnet: discriminator trunk width w (GAN/smoothness heads 2w, posterior 4w-16w)
    gen_width: int = 8  # resnet: generator's last width (its first is 8x)
    gen_mask: bool = True  # resnet: the generator draws a hand mask beside the depth (False: depth only)
    gen_arch: str = "upsampling"  # resnet generator: upsampling (FC + upsampling) | skeleton (keypoint maps)
    # | kinematic (the renderer's hand posed by an MLP, its capsules drawn)
    gen_view: bool = False  # skeleton generator: its keypoints also see the crop centre's direction
    posterior_hidden: int = 1024  # resnet: hidden width of the posterior head's top
    posterior_blocks: int = 1  # resnet: residual blocks per resolution of the posterior head (1: r1-r6)
    stem: str = "strided"  # resnet: the discriminator's first layers: strided (r1-r6) | full | residual
    recenter_passes: int = 0  # inference: re-crops on the predicted palm (release data: palm-centred crops)
    test_rotations: int = 1  # inference: crops turned in-plane this many ways, joints averaged (rotation.py)
    refine_iterations: int = 0  # inference: generator refinement iterations (refinement.py; kinematic)

    def __post_init__(self) -> None:
        get_convention(self.convention)
        if self.test_rotations < 1 or self.test_rotations % 2 == 0:
            raise ValueError(f"test_rotations must be an odd count >= 1, got {self.test_rotations}")
        if self.refine_iterations < 0:
            raise ValueError(f"refine_iterations must be >= 0, got {self.refine_iterations}")
        if self.refine_iterations and self.gen_arch != "kinematic":
            raise ValueError("refine_iterations draws with the generator: it needs gen_arch kinematic")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.posterior_blocks < 1:
            raise ValueError(f"posterior_blocks must be >= 1, got {self.posterior_blocks}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {self.stem!r}")
        if self.gen_arch not in GEN_ARCHS:
            raise ValueError(f"gen_arch must be one of {GEN_ARCHS}, got {self.gen_arch!r}")
        if self.gen_arch == "skeleton" and not (self.arch == "resnet" and self.gen_mask):
            raise ValueError("gen_arch skeleton needs arch resnet and gen_mask (it draws a mask)")
        if self.gen_arch == "kinematic" and self.arch != "resnet":
            raise ValueError("gen_arch kinematic needs arch resnet")
        if self.gen_view and self.gen_arch != "skeleton":
            raise ValueError("gen_view is an option of gen_arch skeleton")
        if self.arch == "paper" and self.head_layers < 1:
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
    # The release networks (issue 11): a 32-d VAE code (PCA of the poses: 20 components leave
    # 5.6 mm, 30 leave 1.7 mm), a residual posterior head, a generator that poses the renderer's
    # hand and draws its capsules (hand-silhouette IoU 0.65 -> 0.82 against the skeleton one of
    # r3g-r7, session 15); a residual block at half resolution in the discriminator's stem (r7:
    # where the fingers are still visible); at inference one re-crop on the palm, 9 in-plane
    # rotations averaged (16.1 -> 15.1 mm, r3), then 40 iterations of refinement by the generator
    # (refinement.py; 13.6 -> 11.1 mm on 200 synthetic test frames, r7k2, session 16).
    "release": CrossingNetConfig(
        arch="resnet",
        stem="residual",
        pca_dims=64,
        code_dims=32,
        width=16,
        gen_width=16,  # the skeleton generator's (r3g-r7); the kinematic one has no width
        gen_arch="kinematic",
        recenter_passes=1,
        test_rotations=9,
        refine_iterations=40,
    ),
    "tiny-release": CrossingNetConfig(
        crop_px=32,
        arch="resnet",
        pca_dims=12,
        code_dims=8,
        width=4,
        gen_width=2,
        smo_hidden=16,
        posterior_hidden=32,
    ),  # fmt: skip
}


def model_config(preset: str, **data: Any) -> CrossingNetConfig:
    """A preset with the fields set by the data (convention, crop_px, cube_mm)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; expected one of {sorted(PRESETS)}")
    return replace(PRESETS[preset], **data)


GAN_LOSSES = ("feature_matching", "nonsaturating")


@dataclass(frozen=True)
class LossConfig:
    """Weights and switches of the loss terms that the models' training steps read (the training
    config extends it)."""

    warmup_steps: int = 500  # joint stage: first steps fit only Ali and the posterior/smoothness heads
    gan_loss: str = "feature_matching"  # generator's GAN term: feature_matching (authors) | nonsaturating
    gan_noise_std: float = 1.0  # GAN stage: std of the Gaussian generator input (tanh-squashed)
    num_mixed: int = 5  # latents per convex combination Z_r in L_smo (paper)
    kl_weight: float = 1.0  # weight of the VAE's KL term (authors' code: 1)
    w_pos: float = 1.0  # weight of L_pos
    w_smo: float = 1.0  # weight of L_smo
    w_recons: float = 1.0  # weight of the truncated reconstruction loss
    w_gan: float = 1.0  # weight of the GAN terms in the joint stage
    use_smo: bool = True  # ablation --no-smo drops L_smo
    use_gan: bool = True  # ablation --no-gan drops the GAN stage and the joint stage's GAN terms
    # The release stages (posterior, adversarial):
    w_joints: float = 1.0  # weight of the smooth-L1 error of the decoded joints (pose units)
    joints_beta: float = 0.02  # smooth-L1 transition, pose units (1 mm at 50 mm units)
    recons_fg_weight: float = 4.0  # paper generator, release stages: extra L1 weight of hand pixels
    gan_every: int = 4  # adversarial stage: the GAN and L_smo terms on every k-th step
    w_gan_generator: float = 1.0  # adversarial stage: the generator's GAN term at w_gan times this
    render_every: int = 1  # posterior stage: a generator step on every k-th step (~1 posterior step); 0: none
    w_keypoints: float = 1.0  # skeleton generator: weight of its keypoints' L1 error (crop units)
    w_consistency: float = 0.0  # mean-teacher term on unlabeled crops (experimental; 0: off)
    consistency_deg: float = 30.0  # its crops turned in-plane by up to +-this for the student
    consistency_rampup: float = 0.5  # its weight rises from ~0 over this fraction of each stage

    def __post_init__(self) -> None:
        if self.gan_every < 1 or self.render_every < 0 or self.w_gan_generator < 0:
            raise ValueError(
                f"gan_every must be >= 1, render_every and w_gan_generator >= 0, got {self.gan_every}, "
                f"{self.render_every}, {self.w_gan_generator}"
            )
        if self.w_consistency < 0 or not 0.0 < self.consistency_deg <= 180.0 or self.consistency_rampup < 0:
            raise ValueError(
                f"w_consistency and consistency_rampup must be >= 0 and consistency_deg in (0, 180], got "
                f"{self.w_consistency}, {self.consistency_rampup}, {self.consistency_deg}"
            )
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")


@dataclass(frozen=True)
class TrainStep:
    """What a model's training step gets from the trainer."""

    cfg: LossConfig
    # "labeled" -> depth (B, 1, S, S), pose (B, 3J), root (B, 3), center (B, 3) crop centre in mm;
    # "images" (the GAN's real side) -> depth
    batch: Callable[[str], dict[str, torch.Tensor]]
    rng: torch.Generator  # this step's noise, seeded by (seed, global step, rank)
    # backward a loss into one optimiser group's parameters, average gradients over processes, step
    optimise: Callable[[str, torch.Tensor], None]
    stage_step: int  # steps already taken in this stage
    memory_format: torch.memory_format  # of the crops the convolutions read
    # crops (B, 1, S, S) -> latents (B, L) by the moving average of the weights (the mean teacher),
    # without gradients; None where the trainer keeps no average
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None
    stage_steps: int = 0  # steps the stage takes in all (0: unknown)

    def rampup(self, fraction: float) -> float:
        """exp(-5 (1 - t)^2), t = the share of `fraction` of the stage done (clipped to 1): from
        0.007 to 1, the mean teacher's ramp-up (Tarvainen & Valpola, NeurIPS 2017); 1 without a length."""
        if fraction <= 0 or self.stage_steps <= 0:
            return 1.0
        t = min(1.0, self.stage_step / (fraction * self.stage_steps))
        return math.exp(-5.0 * (1.0 - t) ** 2)


MODELS: dict[str, type[LatentPoseModel]] = {}  # model kind -> class; each concrete model adds itself


class LatentPoseModel(nn.Module):
    """Common interface: depth crop -> latent -> joints in mm around the crop centre."""

    kind: ClassVar[str]  # registry key, saved in released weights
    stages: ClassVar[tuple[str, ...]]  # training stages, in order
    pca_stages: ClassVar[tuple[str, ...]] = ()  # stages that first fit the pose layers to a PCA

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            MODELS[cls.kind] = cls

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__()
        self.config = config

    # -- inference -----------------------------------------------------------------------------
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

    # -- released weights ----------------------------------------------------------------------
    def save_pretrained(
        self,
        folder: str | os.PathLike,
        latent_stats: LatentStats | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Write config.json, model.safetensors (and latent_stats.safetensors) into `folder`."""
        return write_pretrained(
            folder, self.kind, self.config.to_dict(), self.state_dict(), metadata, latent_stats
        )

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> LatentPoseModel:
        """Rebuild the model from `config.json` and load its weights strictly, in eval mode.

        Called on a concrete class, the folder must hold that kind; called on the common base,
        any kind is accepted.
        """
        meta = read_pretrained_config(folder)
        kind = meta["kind"]
        if kind not in MODELS:
            raise ValueError(f"{folder}: unknown model kind {kind!r}; expected one of {sorted(MODELS)}")
        if "kind" in cls.__dict__ and kind != cls.kind:
            raise ValueError(f"{folder} holds a {kind!r} model, not a {cls.kind!r}")
        model = MODELS[kind](CrossingNetConfig.from_dict(meta["config"]))
        model.load_state_dict(read_pretrained_weights(folder), strict=True)
        return model.to(device).eval()

    # -- training ------------------------------------------------------------------------------
    @classmethod
    def planned_stages(cls, cfg: LossConfig) -> tuple[str, ...]:
        """The stages a full run trains, in order (an ablation may drop some)."""
        return cls.stages

    def param_groups(self, stage: str) -> dict[str, list[nn.Parameter]]:
        """The optimisers of `stage` by name, and the parameters each updates."""
        raise ValueError(f"a {self.kind} model has stages {self.stages}, not {stage!r}")

    def training_step(self, stage: str, step: TrainStep) -> dict[str, torch.Tensor]:
        """One optimisation step of `stage` (the model's `step_<stage>`); returns its named scalar losses."""
        return getattr(self, f"step_{stage}")(step)

    def validation_joints(
        self, depth: torch.Tensor, pose: torch.Tensor, root: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The joint estimates (B, J, 3), mm around the crop centre, whose errors validation reports,
        by metric name: `val_mm` from the crops (B, 1, S, S)."""
        return {"val_mm": self(depth)[0]}
