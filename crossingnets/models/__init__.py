"""The networks: one file per network, the composed Crossing Net, and the baselines; `base`
holds what they share (config, interface, the registry `MODELS` of model kinds)."""

from crossingnets.models.base import (
    GAN_LOSSES,
    GEN_ARCHS,
    MODELS,
    PRESETS,
    CrossingNetConfig,
    LatentPoseModel,
    LossConfig,
    TrainStep,
    model_config,
)
from crossingnets.models.baselines import DeepPriorRegressor, ScratchRegressor
from crossingnets.models.crossingnet import CrossingNet
from crossingnets.models.discriminator import Discriminator
from crossingnets.models.generator import Generator, LatentAlign
from crossingnets.models.pose_vae import PoseVAE

__all__ = [
    "GAN_LOSSES",
    "GEN_ARCHS",
    "MODELS",
    "PRESETS",
    "CrossingNet",
    "CrossingNetConfig",
    "DeepPriorRegressor",
    "Discriminator",
    "Generator",
    "LatentAlign",
    "LatentPoseModel",
    "LossConfig",
    "PoseVAE",
    "ScratchRegressor",
    "TrainStep",
    "model_config",
]
