"""`crossingnets train`: the three-stage semi-supervised training of a Crossing Net, or a baseline.

Stages (paper Sec. 3.4): `vae` (pose VAE on labeled poses), `gan` (depth GAN on every depth
image), `joint` (warm-up of Ali and the posterior/smoothness heads, then alternating
discriminator and generator steps). Baselines: `scratch` (`vae`, then `supervised` L_pos only)
and `deepprior` (`supervised` on a PCA pose prior).

Semi-supervised: `label_fraction` keeps the labels of a seeded subset of the training frames;
every training frame's depth image (plus an optional unlabeled store) feeds the GAN's real side.

Run folder: `config.json` (model and training configs), `metrics.jsonl` (one line per epoch),
`checkpoint.pt` (training state, atomic, `--resume`), `model/` (released weights after each stage).
Runs under `torchrun --nproc_per_node N`: gradients are averaged over processes after every
backward pass (gloo on CPUs, NCCL on GPUs), rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import update_bn
from tqdm import tqdm

from crossingnets import losses as L
from crossingnets.checkpoint import (
    CONFIG_FILE,
    LatentStats,
    load_training_state,
    save_training_state,
)
from crossingnets.data.store import read_info
from crossingnets.data.training import Frames, TrainData, batch_indices, load_data, mix_seed
from crossingnets.distributed import Dist, all_mean, check_replicas_in_sync, init_distributed
from crossingnets.files import atomic_output
from crossingnets.models import MODELS, CrossingNetConfig, LatentPoseModel, model_config

log = logging.getLogger(__name__)

STAGES: dict[str, tuple[str, ...]] = {
    "crossingnet": ("vae", "gan", "joint"),
    "scratch": ("vae", "supervised"),
    "deepprior": ("supervised",),
}
GAN_LOSSES = ("feature_matching", "nonsaturating")
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    model: str = "crossingnet"  # crossingnet | scratch | deepprior (baselines)
    preset: str = "paper"  # model preset, crossingnets.models.PRESETS
    stage: str = "all"  # one stage of the model's STAGES, or all of them in order
    batch_size: int = 64  # frames per step and process (authors' code: 64)
    lr: float = 3e-4  # Adam learning rate of every optimiser (authors' code)
    beta1: float = 0.5  # Adam beta1 (authors' code)
    # Epochs of every stage are len(train) / batch_size steps (see Trainer.steps_per_epoch).
    epochs_vae: int = 100  # pose VAE epochs (labeled poses)
    epochs_gan: int = 20  # depth GAN epochs (the image pool)
    epochs_joint: int = 20  # joint epochs (labeled frames and the image pool)
    epochs_supervised: int = 20  # baselines' epochs (labeled frames)
    warmup_steps: int = 500  # joint stage: first steps fit only Ali and the posterior/smoothness heads
    label_fraction: float = 1.0  # fraction of training frames whose pose labels are kept (seeded)
    val_fraction: float = 0.1  # frames held out for the validation error when no val store is given
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
    use_unlabeled: bool = True  # ablation --no-unlabeled: the GAN's real side sees labeled frames only
    bf16: bool = False  # bfloat16 autocast of forward passes (losses in float32)
    channels_last: bool = False  # channels_last memory format for the convolutions
    bn_frames: int = 1024  # real crops that re-estimate batch-norm statistics after each epoch
    seed: int = 0  # seeds the init, the label subset, the validation split, batches and noise
    save_every: int = 200  # optimisation steps between mid-epoch checkpoints

    def __post_init__(self) -> None:
        if self.model not in STAGES:
            raise ValueError(f"unknown model {self.model!r}; expected one of {sorted(STAGES)}")
        if self.stage != "all" and self.stage not in STAGES[self.model]:
            raise ValueError(f"model {self.model} has stages {STAGES[self.model]}, not {self.stage!r}")
        if self.stage == "gan" and not self.use_gan:
            raise ValueError("--stage gan contradicts --no-gan")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")

    @property
    def stages(self) -> tuple[str, ...]:
        if self.stage != "all":
            return (self.stage,)
        return tuple(s for s in STAGES[self.model] if s != "gan" or self.use_gan)

    def epochs(self, stage: str) -> int:
        return getattr(self, f"epochs_{stage}")


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
}


def data_options(cfg: TrainConfig) -> dict[str, Any]:
    """The TrainConfig fields that decide which frames are labeled, validated and seen as real."""
    return {"seed": cfg.seed, "label_fraction": cfg.label_fraction, "val_fraction": cfg.val_fraction,
            "use_unlabeled": cfg.use_unlabeled}  # fmt: skip


def train_config(preset: str, **overrides: Any) -> TrainConfig:
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {preset!r}; expected one of {sorted(TRAIN_PRESETS)}")
    return replace(TRAIN_PRESETS[preset], **overrides)


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the run stops."""


# ---------------------------------------------------------------------------------------------
# Model construction


def _param_groups(model: LatentPoseModel, stage: str) -> dict[str, list[nn.Parameter]]:
    """The optimisers of a stage and the parameters each updates."""
    if stage == "vae":
        return {"vae": list(model.vae.parameters())}
    if stage == "supervised":
        excluded = set(map(id, model.vae.parameters())) if hasattr(model, "vae") else set()
        return {"estimator": [p for p in model.parameters() if id(p) not in excluded]}
    d = model.discriminator
    if stage == "gan":
        return {"d": [*d.trunk.parameters(), *d.gan.parameters()], "g": list(model.generator.parameters())}
    return {
        "d": list(d.parameters()),
        "g": [*model.generator.parameters(), *model.align.parameters(), *model.vae.parameters()],
        "warmup_heads": [*d.posterior.parameters(), *d.smoothness.parameters()],
        "warmup_align": list(model.align.parameters()),
    }


def _load_init(path: str | os.PathLike) -> tuple[str, CrossingNetConfig, dict[str, torch.Tensor]]:
    """Model kind, config and weights from a run folder, a training checkpoint or released weights."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file() and not (path / CHECKPOINT_FILE).is_file():
        model = LatentPoseModel.from_pretrained(path)
        return model.kind, model.config, model.state_dict()
    state = load_training_state(path / CHECKPOINT_FILE if path.is_dir() else path)
    return state["train_config"]["model"], CrossingNetConfig.from_dict(state["model_config"]), state["model"]


# ---------------------------------------------------------------------------------------------
# The trainer


class Trainer:
    """Runs the stages of `cfg` on `data`, writing into `out`; see the module docstring."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainData,
        out: Path,
        model: LatentPoseModel,
        ddp: Dist,
        paths: dict[str, str | None],
        progress: bool = True,
        tensorboard: bool = False,
    ) -> None:
        self.cfg, self.data, self.out, self.model, self.ddp, self.paths = cfg, data, out, model, ddp, paths
        self.progress = progress and ddp.main
        self.stage_index = self.epoch = self.step = self.global_step = 0
        self.sums: dict[str, float] = {}  # this epoch's loss sums, and the steps that reported
        self.counts: dict[str, int] = {}  # each loss (the joint warm-up reports fewer losses)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.last_val: dict[str, float] = {}
        self.writer = _tensorboard_writer(out) if tensorboard and ddp.main else None
        self.elapsed_before, self.started = 0.0, time.perf_counter()  # wall time over resumes
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model.to(ddp.device, memory_format=self.memory_format)

    # -- state ---------------------------------------------------------------------------------
    @property
    def stage(self) -> str:
        return self.cfg.stages[self.stage_index]

    def state_dict(self) -> dict[str, Any]:
        return {
            "train_config": asdict(self.cfg),
            "model_config": self.model.config.to_dict(),
            "paths": self.paths,
            "stage_index": self.stage_index,
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "sums": dict(self.sums),
            "counts": dict(self.counts),
            "last_val": dict(self.last_val),
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng_cpu": torch.get_rng_state(),
            "elapsed_s": self.elapsed_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"], strict=True)
        for key in ("stage_index", "epoch", "step", "global_step"):
            setattr(self, key, int(state[key]))
        self.sums, self.last_val = dict(state["sums"]), dict(state["last_val"])
        # Checkpoints saved before loss counts and wall time were kept: every loss counted every step.
        self.counts = dict(state.get("counts", {k: self.step for k in self.sums if k != "steps"}))
        self.sums.pop("steps", None)
        if state["optimizers"]:  # none between stages: run() starts the next one afresh
            self._make_optimizers(self.stage)
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
        torch.set_rng_state(state["rng_cpu"])
        self.elapsed_before, self.started = float(state.get("elapsed_s", 0.0)), time.perf_counter()

    def save(self) -> None:
        self._sync_buffers()
        if self.ddp.main:
            save_training_state(self.state_dict(), self.out / CHECKPOINT_FILE)

    def _make_optimizers(self, stage: str) -> None:
        c = self.cfg
        self.optimizers = {
            k: torch.optim.Adam(ps, lr=c.lr, betas=(c.beta1, 0.999))
            for k, ps in _param_groups(self.model, stage).items()
        }

    def _sync_buffers(self) -> None:
        """Average batch-norm statistics over processes, so every replica saves the same model."""
        all_mean([b for b in self.model.buffers() if b.is_floating_point()], self.ddp.world)

    # -- loop ----------------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        """Every stage's epoch is len(train) frames' worth of steps, whatever it draws from (the few
        labeled frames repeat, the image pool is sampled): equal steps at every label fraction and
        with or without the unlabeled pool, so runs compare at equal compute."""
        return max(1, len(self.data.train) // (self.cfg.batch_size * self.ddp.world))

    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train until done, or until `max_steps` optimisation steps in all (then checkpoint)."""
        stop_at = None if max_steps is None else self.global_step + max_steps
        while self.stage_index < len(self.cfg.stages):
            stage, epochs = self.stage, self.cfg.epochs(self.stage)
            if self.epoch == 0 and self.step == 0:
                self.start_stage(stage)
            steps = self.steps_per_epoch()
            while self.epoch < epochs:
                t0, step0 = time.perf_counter(), self.step
                bar = tqdm(
                    total=steps, initial=self.step, desc=f"{stage} {self.epoch + 1}/{epochs}",
                    disable=not self.progress, leave=False, dynamic_ncols=True,
                )  # fmt: skip
                with bar:
                    while self.step < steps:
                        if stop_at is not None and self.global_step >= stop_at:
                            self.save()
                            return self.summary(finished=False)
                        losses = self.train_step(stage)
                        self._record(losses, bar)
                        if self.global_step % self.cfg.save_every == 0:
                            self.save()
                self._end_epoch(stage, steps, (self.step - step0) / max(time.perf_counter() - t0, 1e-9))
            self._end_stage(stage)
        if self.ddp.world > 1:
            check_replicas_in_sync(self.model)
        if self.writer is not None:
            self.writer.close()
        return self.summary(finished=True)

    def start_stage(self, stage: str) -> None:
        """Fresh optimisers for `stage` (and the PCA initialisation of the pose layers it trains)."""
        if stage == "vae" or (stage == "supervised" and self.cfg.model == "deepprior"):
            pca = self.model.init_from_pca(self.data.train.pose[self.data.labeled].numpy())
            log.info("%s stage: pose layers initialised from a %d-component PCA", stage, pca.n_components_)
        self._make_optimizers(stage)
        self.sums, self.counts = {}, {}

    def _record(self, losses: dict[str, torch.Tensor], bar: tqdm) -> None:
        names = list(losses)
        values = torch.stack([losses[k].detach().float() for k in names]).cpu()
        all_mean([values], self.ddp.world)
        values = values.tolist()
        for k, v in zip(names, values, strict=True):
            if not math.isfinite(v):
                raise NonFiniteLossError(
                    f"non-finite {k} loss ({v}) at stage {self.stage}, epoch {self.epoch + 1}, step {self.step + 1}; "
                    f"stopping. The last checkpoint is {self.out / CHECKPOINT_FILE}; try a lower --lr or drop --bf16"
                )
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.step += 1
        self.global_step += 1
        bar.update()
        bar.set_postfix({k: f"{v:.3g}" for k, v in zip(names, values, strict=True)}, refresh=False)

    def _end_epoch(self, stage: str, steps: int, steps_per_s: float) -> None:
        metrics: dict[str, Any] = {
            "stage": stage,
            "epoch": self.epoch + 1,
            "global_step": self.global_step,
            **{f"loss_{k}": v / self.counts[k] for k, v in self.sums.items()},
            "samples_per_s": steps_per_s * self.cfg.batch_size * self.ddp.world,
            "elapsed_s": self.elapsed_s,
        }
        if stage != "vae":
            self._recompute_batch_norm()
        self._sync_buffers()
        if self.ddp.main and self.data.val is not None:
            self.last_val = validate(self.model, self.data.val, self.memory_format)
            metrics.update(self.last_val)
        self.epoch, self.step, self.sums, self.counts = self.epoch + 1, 0, {}, {}
        if self.ddp.main:
            with open(self.out / METRICS_FILE, "a") as f:
                f.write(json.dumps(metrics) + "\n")
            if self.writer is not None:
                for k, v in metrics.items():
                    if isinstance(v, float):
                        self.writer.add_scalar(f"{stage}/{k}", v, self.global_step)
            log.info(
                "%s",
                " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
            )
        self.save()

    def _recompute_batch_norm(self) -> None:
        """Precise batch norm (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"): the running
        statistics average batches seen under earlier weights; after a joint epoch they had drifted
        far enough to raise the eval-mode error from 44 to 75 mm (measured). So at each epoch's end
        they are re-estimated with the final weights on `bn_frames` evenly spaced real crops."""
        images = self.data.images
        idx = torch.linspace(0, len(images) - 1, min(len(images), self.cfg.bn_frames)).long()
        dev, mf, b = self.ddp.device, self.memory_format, self.cfg.batch_size
        batches = (images[idx[s : s + b]].to(dev, memory_format=mf) for s in range(0, len(idx), b))
        update_bn(batches, self.model.depth_reader)

    def _end_stage(self, stage: str) -> None:
        if self.ddp.main:
            self.model.save_pretrained(
                self.out / "model",
                latent_stats=latent_stats(self.model, self.data),
                metadata={"train_config": asdict(self.cfg), "stages_done": list(self.cfg.stages[: self.stage_index + 1]),
                          "paths": self.paths, **self.last_val},
            )  # fmt: skip
        self.stage_index, self.epoch, self.step, self.optimizers = self.stage_index + 1, 0, 0, {}
        self.save()

    @property
    def elapsed_s(self) -> float:
        """Wall time of the run so far, summed over the processes that resumed it."""
        return self.elapsed_before + time.perf_counter() - self.started

    def summary(self, finished: bool) -> dict[str, Any]:
        return {
            "finished": finished,
            "global_step": self.global_step,
            "elapsed_s": round(self.elapsed_s, 1),
            **self.last_val,
        }

    # -- steps ---------------------------------------------------------------------------------
    def train_step(self, stage: str) -> dict[str, torch.Tensor]:
        """One optimisation step of `stage` at the current (epoch, step); returns the losses."""
        self.model.train()
        g = torch.Generator(self.ddp.device).manual_seed(
            mix_seed(self.cfg.seed, self.global_step, self.ddp.rank)
        )
        with torch.autocast(self.ddp.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            return getattr(self, f"_step_{stage}")(g)

    def _batch(self, stream: str) -> dict[str, torch.Tensor]:
        c, d = self.cfg, self.data
        pool = len(d.images) if stream == "images" else len(d.labeled)
        idx = batch_indices(
            pool,
            c.batch_size,
            c.seed,
            0 if stream == "images" else 1,
            self.epoch,
            self.step,
            self.ddp.rank,
            self.ddp.world,
        )
        dev, mf = self.ddp.device, self.memory_format
        if stream == "images":
            return {"depth": d.images[idx].to(dev, memory_format=mf)}
        i = d.labeled[idx]
        return {
            "depth": d.train.depth[i].to(dev, memory_format=mf),
            "pose": d.train.pose[i].to(dev),
            "root": d.train.root[i].to(dev),
        }

    def _update(self, name: str, loss: torch.Tensor) -> None:
        """Backward `loss` into the parameters of optimiser `name`, average them over processes, step."""
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        opt = self.optimizers[name]
        all_mean(
            [p.grad for grp in opt.param_groups for p in grp["params"] if p.grad is not None], self.ddp.world
        )
        opt.step()

    def _step_vae(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        b = self._batch("labeled")
        recon, mean, logvar = self.model.vae(b["pose"], g)
        out = {"recons": L.vae_reconstruction_loss(recon, b["pose"]), "kl": L.kl_divergence(mean, logvar)}
        self._update("vae", out["recons"] + self.cfg.kl_weight * out["kl"])
        return out

    def _fake_depth_noise(self, g: torch.Generator) -> torch.Tensor:
        c, m = self.cfg, self.model
        z = (
            torch.randn((c.batch_size, m.config.latent_dims), generator=g, device=self.ddp.device)
            * c.gan_noise_std
        )
        return m.generator(z).contiguous(memory_format=self.memory_format)

    def _generator_gan_term(self, real_features: torch.Tensor, fake_map: torch.Tensor) -> torch.Tensor:
        """The generator's GAN loss from the trunk map of its crops (B, C, h, h)."""
        fake_logits, fake_features = self.model.discriminator.forward_gan(fake_map)
        if self.cfg.gan_loss == "feature_matching":
            return L.feature_matching_loss(real_features, fake_features)
        return L.generator_nonsaturating_loss(fake_logits)

    def _step_gan(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        d = self.model.discriminator
        real = self._batch("images")["depth"]
        fake = self._fake_depth_noise(g)
        real_logits, real_features = d.forward_gan(d.forward_trunk(real))
        with running_stats_frozen(d):
            fake_logits, _ = d.forward_gan(d.forward_trunk(fake.detach()))
        out = {"d_gan": L.discriminator_gan_loss(real_logits, fake_logits)}
        self._update("d", out["d_gan"])
        with running_stats_frozen(d):
            out["g_gan"] = self._generator_gan_term(real_features.detach(), d.forward_trunk(fake))
        self._update("g", out["g_gan"])
        return out

    def _step_joint(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        c, m = self.cfg, self.model
        d = m.discriminator
        warm = self.epoch * self.steps_per_epoch() + self.step < c.warmup_steps
        gan = c.use_gan and not warm
        lab = self._batch("labeled")
        x_l, b = lab["depth"], lab["depth"].shape[0]
        mean, logvar = m.vae.encode(lab["pose"])
        code = m.vae.sample(mean, logvar, g)
        z_l = torch.cat([code, lab["root"]], 1)  # (B, 23) sampled pose latents
        target = torch.cat([mean, lab["root"]], 1).detach()  # deterministic encodings, L_pos targets
        z_r = L.convex_mixtures(z_l.detach(), c.num_mixed, g)
        rendered = m.render(torch.cat([z_l.detach() if warm else z_l, z_r]))  # one "fake" group (2B)
        rendered = rendered.contiguous(memory_format=self.memory_format)

        # Discriminator step (warm-up: posterior and smoothness heads only).
        out: dict[str, torch.Tensor] = {}
        h_l = d.forward_trunk(x_l)
        out["pos"] = L.posterior_loss(d.forward_posterior(h_l), target)
        total = c.w_pos * out["pos"]
        with running_stats_frozen(d):
            h_fake = d.forward_trunk(rendered.detach())
            f_fake = d.forward_smoothness(h_fake) if c.use_smo else None
            fake_logits = d.forward_gan(h_fake)[0] if gan else None
        if c.use_smo:
            f_l = d.forward_smoothness(h_l)
            out["smo"] = L.smoothness_loss(f_fake[b:], f_l, f_fake[:b], z_r, z_l)
            total = total + c.w_smo * out["smo"]
        if gan:
            real_logits, real_features = d.forward_gan(d.forward_trunk(self._batch("images")["depth"]))
            out["d_gan"] = L.discriminator_gan_loss(real_logits, fake_logits)
            total = total + c.w_gan * out["d_gan"]
        self._update("warmup_heads" if warm else "d", total)

        # Generator step (warm-up: Ali only, by the truncated reconstruction loss).
        out["recons"] = L.truncated_reconstruction_loss(rendered[:b], x_l)
        total = c.w_recons * out["recons"]
        if not warm:
            with running_stats_frozen(d):
                h_fake = d.forward_trunk(rendered) if c.use_smo or gan else None
                if c.use_smo:
                    f_fake = d.forward_smoothness(h_fake)
                    out["g_smo"] = L.smoothness_loss(f_fake[b:], f_l.detach(), f_fake[:b], z_r, z_l)
                    total = total + c.w_smo * out["g_smo"]
                if gan:
                    out["g_gan"] = self._generator_gan_term(real_features.detach(), h_fake)
                    total = total + c.w_gan * out["g_gan"]
            out["vae_recons"] = L.vae_reconstruction_loss(m.vae.decode(code), lab["pose"])
            out["kl"] = L.kl_divergence(mean, logvar)
            total = total + out["vae_recons"] + c.kl_weight * out["kl"]
        self._update("warmup_align" if warm else "g", total)
        return out

    def _step_supervised(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        m, lab = self.model, self._batch("labeled")
        estimate = m.estimate_latent(lab["depth"])
        if self.cfg.model == "scratch":
            with torch.no_grad():
                target = m.encode_pose(lab["pose"], lab["root"])
            out = {"pos": L.posterior_loss(estimate, target)}
        else:
            joints = lab["pose"].unflatten(1, (-1, 3)) + lab["root"][:, None]
            out = {"pose": L.pose_loss(m.decode_latent_units(estimate), joints)}
        self._update("estimator", next(iter(out.values())))
        return out


@contextlib.contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Batch norm inside normalises generated crops by their own batch statistics but leaves the
    running statistics alone: those must describe real crops, the only ones inference sees."""
    norms = [m for m in module.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - momentum) * running + momentum * batch
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


@torch.no_grad()
def validate(
    model: LatentPoseModel,
    frames: Frames,
    memory_format: torch.memory_format = torch.contiguous_format,
    batch: int = 256,
) -> dict[str, float]:
    """Mean 3D joint error in mm of the estimation path (`val_mm`) and, for VAE models, of the
    pose VAE's own reconstruction (`val_vae_mm`), over `frames`."""
    model.eval()
    device = next(model.parameters()).device
    sums = {"val_mm": 0.0, "val_vae_mm": 0.0}
    for s in range(0, len(frames), batch):
        f = frames.subset(np.arange(s, min(s + batch, len(frames))))
        truth = f.joints_xyz.to(device)
        center = f.center_xyz.to(device)[:, None]
        joints = model(f.depth.to(device, memory_format=memory_format))[0].float() + center
        sums["val_mm"] += (joints - truth).norm(dim=-1).mean(-1).sum().item()
        if hasattr(model, "vae"):
            latent = model.encode_pose(f.pose.to(device), f.root.to(device))
            sums["val_vae_mm"] += (
                (model.decode_latent(latent) + center - truth).norm(dim=-1).mean(-1).sum().item()
            )
    if not hasattr(model, "vae"):
        del sums["val_vae_mm"]
    return {k: v / len(frames) for k, v in sums.items()}


@torch.no_grad()
def latent_stats(model: LatentPoseModel, data: TrainData) -> LatentStats:
    """PCA and spread of the latents of the labeled training poses (what the generator learnt)."""
    model.eval()
    device = next(model.parameters()).device
    i = data.labeled
    latents = model.encode_pose(data.train.pose[i].to(device), data.train.root[i].to(device))
    return LatentStats.fit(latents.float().cpu().numpy())


def _tensorboard_writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RuntimeError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


@contextlib.contextmanager
def _run_folder(out: Path, ddp: Dist) -> Iterator[None]:
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
    if ddp.world > 1:
        dist.barrier()
    yield


def train(
    cfg: TrainConfig,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    unlabeled: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    init: str | os.PathLike | None = None,
    device: str = "auto",
    max_steps: int | None = None,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Train a new run in folder `out` (which must not hold a checkpoint); returns a summary dict
    (`finished`, `global_step`, last `val_mm`)."""
    out = Path(out)
    if (out / CHECKPOINT_FILE).exists():
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    paths = {
        k: None if v is None else str(v)
        for k, v in (("data", data), ("unlabeled", unlabeled), ("val", val), ("init", init))
    }
    ddp = init_distributed(device)
    info = read_info(data)
    store = {"convention": info.convention.name, "crop_px": info.crop.crop_px, "cube_mm": info.crop.cube_mm}
    torch.manual_seed(cfg.seed)
    if init is None:
        model = MODELS[cfg.model](model_config(cfg.preset, **store))
    else:
        kind, mcfg, weights = _load_init(init)
        if kind != cfg.model or any(getattr(mcfg, k) != v for k, v in store.items()):
            raise ValueError(f"--init {init} holds a {kind} model for {mcfg.convention}/{mcfg.crop_px} px; "
                             f"this run trains a {cfg.model} on {store}")  # fmt: skip
        model = MODELS[kind](mcfg)
        model.load_state_dict(weights, strict=True)
    d = load_data(data, unlabeled, val, model.config.pose_unit_mm, **data_options(cfg))
    with _run_folder(out, ddp):
        if ddp.main:
            meta = {"train_config": asdict(cfg), "model_kind": cfg.model, "model_config": model.config.to_dict(), "paths": paths,
                    "num_train": len(d.train), "num_labeled": len(d.labeled), "num_images": len(d.images),
                    "num_val": 0 if d.val is None else len(d.val), "world_size": ddp.world}  # fmt: skip
            with atomic_output(out / CONFIG_FILE) as tmp:
                tmp.write_text(json.dumps(meta, indent=2) + "\n")
        trainer = Trainer(cfg, d, out, model, ddp, paths, progress, tensorboard)
        return trainer.run(max_steps)


def resume(
    out: str | os.PathLike,
    *,
    device: str = "auto",
    max_steps: int | None = None,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Continue the run in folder `out` from its last checkpoint, with its saved configs and stores."""
    out = Path(out)
    state = load_training_state(out / CHECKPOINT_FILE)
    cfg = TrainConfig(**state["train_config"])
    paths = state["paths"]
    ddp = init_distributed(device)
    model = MODELS[cfg.model](CrossingNetConfig.from_dict(state["model_config"]))
    d = load_data(
        paths["data"], paths["unlabeled"], paths["val"], model.config.pose_unit_mm, **data_options(cfg)
    )
    trainer = Trainer(cfg, d, out, model, ddp, paths, progress, tensorboard)
    trainer.load_state_dict(state)
    return trainer.run(max_steps)


# ---------------------------------------------------------------------------------------------
# CLI

_FLAGS: dict[str, tuple[type, str]] = {
    "batch_size": (int, "frames per step and process"),
    "lr": (float, "Adam learning rate"),
    "epochs_vae": (int, "pose VAE epochs"),
    "epochs_gan": (int, "depth GAN epochs"),
    "epochs_joint": (int, "joint-stage epochs"),
    "epochs_supervised": (int, "baseline epochs"),
    "warmup_steps": (int, "joint-stage warm-up steps"),
    "label_fraction": (float, "fraction of training frames that keep their pose labels (seeded)"),
    "val_fraction": (float, "fraction of the store held out for validation when no --val"),
    "seed": (int, "random seed"),
    "save_every": (int, "steps between checkpoints"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="training store (.h5)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument(
        "--stage", choices=("all", "vae", "gan", "joint", "supervised"), help="stage(s) to run (default all)"
    )
    p.add_argument(
        "--model", choices=sorted(STAGES), help="crossingnet (default) or a baseline: scratch, deepprior"
    )
    p.add_argument(
        "--preset", choices=sorted(TRAIN_PRESETS), help="model and training preset (default paper)"
    )
    p.add_argument("--unlabeled", help="extra store of depth images used without their labels")
    p.add_argument("--val", help="validation store (default: hold out --val-fraction of --data)")
    p.add_argument(
        "--init", help="start from these weights (run folder, checkpoint.pt or released model folder)"
    )
    p.add_argument("--gan-loss", choices=GAN_LOSSES, help="generator GAN term (default feature_matching)")
    p.add_argument("--no-smo", action="store_true", help="ablation: without L_smo")
    p.add_argument("--no-gan", action="store_true", help="ablation: without the GAN stage and terms")
    p.add_argument(
        "--no-unlabeled", action="store_true", help="ablation: GAN real side sees labeled frames only"
    )
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    for name, (typ, help_text) in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=typ, help=help_text)
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")
    p.add_argument(
        "--max-steps", type=int, help="stop (with a checkpoint) after this many steps; --resume continues"
    )
    p.add_argument(
        "--tensorboard", action="store_true", help="also log to OUT/tensorboard (needs tensorboard)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set on the command line."""
    overrides: dict[str, Any] = {
        k: getattr(args, k)
        for k in (*_FLAGS, "stage", "model", "gan_loss", "preset")
        if getattr(args, k) is not None
    }
    for flag, field in (("no_smo", "use_smo"), ("no_gan", "use_gan"), ("no_unlabeled", "use_unlabeled")):
        if getattr(args, flag):
            overrides[field] = False
    overrides.update({k: True for k in ("bf16", "channels_last") if getattr(args, k)})
    return overrides


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = _config_overrides(args)
    return train_config(overrides.pop("preset", "paper"), **overrides)


def main(args: argparse.Namespace) -> int:
    common = {
        "device": args.device,
        "max_steps": args.max_steps,
        "progress": not args.no_progress,
        "tensorboard": args.tensorboard,
    }
    if args.resume:
        given = [
            *_config_overrides(args),
            *(k for k in ("data", "unlabeled", "val", "init") if getattr(args, k)),
        ]
        if given:
            raise SystemExit(
                f"crossingnets train --resume continues with the run's saved settings and stores; "
                f"drop {', '.join('--' + k.replace('use_', 'no_').replace('_', '-') for k in given)}"
            )
        summary = resume(args.out, **common)
    else:
        if args.data is None:
            raise SystemExit("crossingnets train: --data is required (unless --resume)")
        summary = train(
            config_from_args(args),
            args.data,
            args.out,
            unlabeled=args.unlabeled,
            val=args.val,
            init=args.init,
            **common,
        )
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line, not one per torchrun process
        print(json.dumps(summary))
    return 0
