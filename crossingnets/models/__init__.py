"""The networks: one file per network, and the composed Crossing Net."""

from crossingnets.models.baselines import DeepPriorRegressor, ScratchRegressor
from crossingnets.models.crossingnet import (
    PRESETS,
    CrossingNet,
    CrossingNetConfig,
    LatentPoseModel,
    model_config,
)
from crossingnets.models.discriminator import Discriminator
from crossingnets.models.generator import Generator, LatentAlign
from crossingnets.models.pose_vae import PoseVAE

MODELS: dict[str, type[LatentPoseModel]] = {
    m.kind: m for m in (CrossingNet, ScratchRegressor, DeepPriorRegressor)
}

__all__ = [
    "MODELS",
    "PRESETS",
    "CrossingNet",
    "CrossingNetConfig",
    "DeepPriorRegressor",
    "Discriminator",
    "Generator",
    "LatentAlign",
    "LatentPoseModel",
    "PoseVAE",
    "ScratchRegressor",
    "model_config",
]
