"""Training configs: `TrainConfig` and its named presets, the recipes a run starts from.

The loop's settings are TrainConfig's own fields; the loss terms' weights and switches are those
of `crossingnets.models.LossConfig`, which it extends. Each field's comment is its help in
`crossingnets train --help`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from crossingnets.models import MODELS, LossConfig

OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class TrainConfig(LossConfig):
    """The loop's settings, and (inherited) the loss terms' weights and switches."""

    model: str = "crossingnet"  # model kind: crossingnet, or a baseline: scratch, deepprior
    preset: str = "paper"  # model and training preset (crossingnets.models.PRESETS, TRAIN_PRESETS)
    stage: str = "all"  # one stage of the model's, or all of them in order
    batch_size: int = 64  # frames per step and process (authors' code: 64)
    lr: float = 3e-4  # peak learning rate of every optimiser (authors' code: Adam, 3e-4)
    lr_adversarial: float = 0.0  # the adversarial stage's peak learning rate (0: lr)
    beta1: float = 0.5  # Adam beta1 (authors' code)
    optimizer: str = "adam"  # adam (authors' code) | adamw (decoupled weight decay)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    lr_schedule: str = "constant"  # constant (authors' code) | onecycle: warm-up, cosine to 0, per stage
    warmup_fraction: float = 0.1  # onecycle: share of each stage's steps spent warming up
    ema_decay: float = 0.0  # > 0: each stage ends on an exponential moving average of its weights
    ema_warmup: bool = False  # the average's decay min(ema_decay, 1 - 1 / (1 + step)): a young one follows
    # Epochs of every stage are len(train) / batch_size steps (see Trainer.steps_per_epoch).
    epochs_vae: int = 100  # pose VAE epochs (labeled poses)
    epochs_render: int = 0  # generator + Ali as a renderer of labeled poses (VAE frozen)
    epochs_gan: int = 20  # depth GAN epochs (the image pool)
    epochs_joint: int = 20  # joint epochs (labeled frames and the image pool)
    epochs_supervised: int = 20  # baselines' epochs (labeled frames)
    epochs_posterior: int = 0  # release: posterior head + generator as renderer (VAE frozen)
    epochs_adversarial: int = 0  # release: posterior + generator with GAN and L_smo terms
    label_fraction: float = 1.0  # fraction of training frames whose pose labels are kept (seeded)
    val_fraction: float = 0.1  # frames held out for the validation error when no val store is given
    use_unlabeled: bool = True  # ablation --no-unlabeled: the GAN's real side sees labeled frames only
    bf16: bool = False  # bfloat16 autocast of forward passes (losses in float32)
    channels_last: bool = False  # channels_last memory format for the convolutions
    bn_frames: int = 1024  # real crops that re-estimate batch-norm statistics after each epoch
    rotate_deg: float = 0.0  # augmentation: labeled crops turned in-plane by up to +-this, joints with them
    seed: int = 0  # seeds the init, the label subset, the validation split, batches and noise
    save_every: int = 200  # optimisation steps between mid-epoch checkpoints

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {sorted(MODELS)}")
        stages = MODELS[self.model].stages
        if self.stage != "all" and self.stage not in stages:
            raise ValueError(f"model {self.model} has stages {stages}, not {self.stage!r}")
        if missing := [s for s in stages if not hasattr(self, f"epochs_{s}")]:
            raise ValueError(
                f"TrainConfig has no epochs_{missing[0]} field for the {self.model} stage {missing[0]!r}"
            )
        if self.stage != "all" and self.stage not in MODELS[self.model].planned_stages(self):
            raise ValueError(f"--stage {self.stage} contradicts the ablations, which drop it")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.rotate_deg <= 180.0:
            raise ValueError(f"rotate_deg must be in [0, 180], got {self.rotate_deg}")

    @property
    def stages(self) -> tuple[str, ...]:
        return MODELS[self.model].planned_stages(self) if self.stage == "all" else (self.stage,)

    def epochs(self, stage: str) -> int:
        return getattr(self, f"epochs_{stage}")

    def peak_lr(self, stage: str) -> float:
        return self.lr_adversarial if stage == "adversarial" and self.lr_adversarial > 0 else self.lr

    def lr_at(self, stage: str, step: int, total: int) -> float:
        """The learning rate of step `step` of a stage of `total` steps."""
        peak = self.peak_lr(stage)
        if self.lr_schedule == "constant":
            return peak
        warm = max(1, round(self.warmup_fraction * total))
        if step < warm:
            return peak * (step + 1) / warm
        return 0.5 * peak * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    "tiny": TrainConfig(  # for tests: seconds on a CPU
        preset="tiny",
        batch_size=8,
        epochs_vae=2,
        epochs_gan=1,
        epochs_joint=2,
        epochs_supervised=2,
        warmup_steps=2,
        val_fraction=0.2,
        save_every=3,
    ),
    # Issue 11's recipe for 2 CPU cores, on domain-randomised stores (`generate --randomize`; the
    # whole of it, stores included: `crossingnets pipeline`): the VAE, the generator and Ali as a
    # renderer of labelled poses, the posterior head on crops turned in-plane (most of the budget;
    # AdamW one-cycle, EMA), then a short adversarial stage with the GAN and L_smo terms.
    "release": TrainConfig(
        preset="release",
        batch_size=64,
        lr=2e-3,
        lr_adversarial=3e-4,
        beta1=0.9,
        optimizer="adamw",
        weight_decay=1e-2,
        lr_schedule="onecycle",
        ema_decay=0.999,
        epochs_vae=4,
        epochs_gan=0,
        epochs_joint=0,
        epochs_render=30,  # the kinematic generator, 100,000 crops (session 15; the skeleton one ran 20 of 50,000)
        epochs_posterior=14,  # r7, with the residual stem (r6: 18 epochs with the strided stem; r5: 12)
        epochs_adversarial=1,
        render_every=0,  # the generator has its own stage (r1-r3 drew one generator step in 3)
        rotate_deg=30.0,
        channels_last=True,
        kl_weight=1e-4,
        w_pos=0.02,
        gan_loss="nonsaturating",
        w_gan=0.05,
        w_gan_generator=0.2,  # r5: 1, whose GAN term flattened the rendered depth (10.6 -> 15.0 mm)
        w_smo=0.1,
        gan_every=4,
        val_fraction=0.02,
        bn_frames=2048,
        save_every=500,
    ),
    "tiny-release": TrainConfig(  # for tests: the release stages in seconds
        preset="tiny-release",
        batch_size=8,
        lr=2e-3,
        beta1=0.9,
        optimizer="adamw",
        weight_decay=1e-2,
        lr_schedule="onecycle",
        ema_decay=0.9,
        epochs_vae=1,
        epochs_gan=0,
        epochs_joint=0,
        epochs_posterior=2,
        epochs_adversarial=1,
        gan_loss="nonsaturating",
        gan_every=2,
        val_fraction=0.2,
        save_every=3,
    ),
}


def train_config(preset: str, **overrides: Any) -> TrainConfig:
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {preset!r}; expected one of {sorted(TRAIN_PRESETS)}")
    return replace(TRAIN_PRESETS[preset], **overrides)


def data_options(cfg: TrainConfig) -> dict[str, Any]:
    """The TrainConfig fields that decide which frames are labeled, validated and seen as real."""
    return {"seed": cfg.seed, "label_fraction": cfg.label_fraction, "val_fraction": cfg.val_fraction,
            "use_unlabeled": cfg.use_unlabeled}  # fmt: skip
