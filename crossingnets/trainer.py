"""The training loop, generic over the models: stages, epochs, checkpoints, metrics, processes.

Each model names its stages, their optimiser groups and their named losses
(`crossingnets.models.base`); the Trainer runs the stages of its config in order, each for
`epochs_<stage>` epochs of len(train) / batch_size steps, with fresh optimisers per stage (Adam or
AdamW; a constant or one-cycle learning rate over the stage). After each epoch it re-estimates
batch-norm statistics on real crops, validates and writes one JSON line of metrics; after each
stage it swaps in the weights' moving average (if `ema_decay`) and releases the weights.

Run folder: `config.json` (model and training configs), `metrics.jsonl` (one line per epoch),
`checkpoint.pt` (training state, atomic, `--resume`), `model/` (released weights after each stage).
Under torchrun, gradients are averaged over processes after every backward pass (gloo on CPUs,
NCCL on GPUs) and rank 0 writes the files.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from crossingnets.checkpoint import save_training_state
from crossingnets.data.training import TrainData, batch_indices, mix_seed
from crossingnets.distributed import Dist, all_mean, check_replicas_in_sync
from crossingnets.files import atomic_output
from crossingnets.models import LatentPoseModel, TrainStep
from crossingnets.models.batchnorm import recompute_running_stats, running_stats_frozen, trains_batch_norm
from crossingnets.recipes import TrainConfig
from crossingnets.rotation import turn_crops, turn_points
from crossingnets.validation import latent_stats, validate

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the run stops."""


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
        self.ema: dict[str, torch.Tensor] = {}  # moving average of the stage's trained parameters
        self.last_val: dict[str, float] = {}
        self.metrics_lines = 0  # lines of metrics.jsonl that the last checkpoint accounts for
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
            "metrics_lines": self.metrics_lines,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "ema": dict(self.ema),
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
        self.ema = dict(state.get("ema", {}))
        # Checkpoints saved before the count was kept account for every line written.
        self.metrics_lines = int(state.get("metrics_lines", len(_lines(self.out / METRICS_FILE))))
        torch.set_rng_state(state["rng_cpu"])
        self.elapsed_before, self.started = float(state.get("elapsed_s", 0.0)), time.perf_counter()

    def save(self) -> None:
        self._sync_buffers()
        if self.ddp.main:
            save_training_state(self.state_dict(), self.out / CHECKPOINT_FILE)

    def _make_optimizers(self, stage: str) -> None:
        """One optimiser per parameter group of `stage`, fused where the device has the kernel (the
        same update; on one CPU thread an AdamW step over the release discriminator's 2.8 M weights
        takes 5 ms against the per-tensor loop's 26, though a whole posterior step did not measurably
        gain: BENCHMARKS)."""
        c = self.cfg
        make = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        extra: dict[str, Any] = {"weight_decay": c.weight_decay} if c.optimizer == "adamw" else {}
        if self.ddp.device.type in ("cpu", "cuda"):
            extra["fused"] = True
        self.optimizers = {
            k: make(ps, lr=c.peak_lr(stage), betas=(c.beta1, 0.999), **extra)
            for k, ps in self.model.param_groups(stage).items()
        }

    def _trained_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The stage's trained parameters by name (what the moving average follows)."""
        ids = {id(p) for o in self.optimizers.values() for g in o.param_groups for p in g["params"]}
        return {n: p for n, p in self.model.named_parameters() if id(p) in ids}

    @torch.no_grad()
    def _update_ema(self, stage_step: int) -> None:
        """Fold this step's weights into the average. With `ema_warmup`, its decay is at most
        1 - 1 / (1 + stage_step): the plain mean of the stage's weights so far, until that is slower
        than `ema_decay` (Tarvainen & Valpola 2017): a mean teacher ~1,000 steps behind a one-cycle
        schedule's peak taught the student an untrained network's poses."""
        if self.cfg.ema_decay <= 0:
            return
        params = self._trained_parameters()
        if not self.ema:
            self.ema = {n: p.detach().clone() for n, p in params.items()}
            return
        decay = (
            min(self.cfg.ema_decay, 1.0 - 1.0 / (1 + stage_step))
            if self.cfg.ema_warmup
            else self.cfg.ema_decay
        )
        for n, p in params.items():
            self.ema[n].lerp_(p.detach(), 1.0 - decay)

    @torch.no_grad()
    def _teacher(self, depth: torch.Tensor) -> torch.Tensor:
        """Latents (B, L) of crops by the moving average of the weights, the mean teacher (before the
        average's first update, the weights themselves). Its batch norm normalises by the batch's
        own statistics, as the mean teacher's authors' code does: the running statistics follow the
        student's weights, not the average's. The average is swapped in by `functional_call`, not
        copied into the weights: the step's graph holds them for its backward pass."""
        with running_stats_frozen(self.model):
            return torch.func.functional_call(self.model, self.ema, (depth,), strict=False)[1]

    @torch.no_grad()
    def _swap_in_ema(self) -> None:
        """End of stage: the moving average replaces the weights; batch norm is re-estimated for it."""
        params = dict(self.model.named_parameters())
        for n, v in self.ema.items():
            params[n].copy_(v)
        self.ema = {}
        if self._reestimate_and_validate(batch_norm=self._trains_depth_reader_norms()):
            self._write_metrics({"stage": self.stage, "ema": True, "global_step": self.global_step,
                                 "elapsed_s": self.elapsed_s, **self.last_val})  # fmt: skip

    def _trains_depth_reader_norms(self) -> bool:
        """Whether this stage trains batch norms of the network that reads crops, whose statistics
        are then re-estimated on real crops. A stage that trains only the generator (`render`)
        leaves them as they are: re-estimated on its store, they moved the bundle's joints by 15 mm."""
        return trains_batch_norm(self.model.depth_reader, list(self._trained_parameters().values()))

    def _reestimate_and_validate(self, batch_norm: bool) -> bool:
        """Re-estimate batch-norm statistics on real crops (if `batch_norm`), average buffers over
        processes, and on the main process validate into `last_val`; True when it validated."""
        if batch_norm:
            recompute_running_stats(
                self.model.depth_reader, self.data.images, self.cfg.bn_frames, self.cfg.batch_size,
                self.ddp.device, self.memory_format,
            )  # fmt: skip
        self._sync_buffers()
        if not (self.ddp.main and self.data.val is not None):
            return False
        self.last_val = validate(self.model, self.data.val, self.memory_format)
        return True

    def _write_metrics(self, record: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl; the next checkpoint counts it, so a run killed before
        that checkpoint drops the line when it resumes, and writes it again once."""
        with open(self.out / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.metrics_lines += 1

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
        if self.ddp.main:  # lines of a killed run that its checkpoint does not account for
            _keep_lines(self.out / METRICS_FILE, self.metrics_lines)
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
        if stage in self.model.pca_stages:
            pca = self.model.init_from_pca(self.data.train.pose[self.data.labeled].numpy())
            log.info("%s stage: pose layers initialised from a %d-component PCA", stage, pca.n_components_)
        self._make_optimizers(stage)
        self.sums, self.counts = {}, {}

    def train_step(self, stage: str) -> dict[str, torch.Tensor]:
        """One optimisation step of `stage` at the current (epoch, step); returns the losses."""
        self.model.train()
        rng = torch.Generator(self.ddp.device).manual_seed(
            mix_seed(self.cfg.seed, self.global_step, self.ddp.rank)
        )
        stage_step = self.epoch * self.steps_per_epoch() + self.step
        stage_steps = self.cfg.epochs(stage) * self.steps_per_epoch()
        lr = self.cfg.lr_at(stage, stage_step, stage_steps)
        for o in self.optimizers.values():
            for g in o.param_groups:
                g["lr"] = lr
        teacher = self._teacher if self.cfg.ema_decay > 0 else None
        step = TrainStep(
            self.cfg, self._batch, rng, self._optimise, stage_step, self.memory_format, teacher, stage_steps
        )
        with torch.autocast(self.ddp.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            losses = self.model.training_step(stage, step)
        self._update_ema(stage_step)
        return losses

    def _batch(self, stream: str) -> dict[str, torch.Tensor]:
        """This step's batch of `stream` (see TrainStep.batch), on the device."""
        c, d = self.cfg, self.data
        pool = len(d.images) if stream == "images" else len(d.labeled)
        idx = batch_indices(
            pool, c.batch_size, c.seed, 0 if stream == "images" else 1, self.epoch, self.step,
            self.ddp.rank, self.ddp.world,
        )  # fmt: skip
        dev, mf = self.ddp.device, self.memory_format
        if stream == "images":
            return {"depth": d.images[idx].to(dev, memory_format=mf)}
        i = d.labeled[idx]
        depth, pose, root, center = d.train.depth[i], d.train.pose[i], d.train.root[i], d.train.center_xyz[i]
        if c.rotate_deg > 0:  # each crop turned in-plane, its joints with it (seeded by the step)
            rng = torch.Generator().manual_seed(mix_seed(c.seed, 2, self.epoch, self.step, self.ddp.rank))
            angles = (torch.rand(len(i), generator=rng) * 2 - 1) * c.rotate_deg
            depth = turn_crops(depth, angles)
            pose = turn_points(pose.unflatten(1, (-1, 3)), angles).flatten(1)
            root = turn_points(root[:, None], angles)[:, 0]
        return {
            "depth": depth.to(dev, memory_format=mf),
            "pose": pose.to(dev),
            "root": root.to(dev),
            "center": center.to(dev),
        }

    def _optimise(self, name: str, loss: torch.Tensor) -> None:
        """Backward `loss` into the parameters of optimiser `name`, average them over processes, step."""
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        opt = self.optimizers[name]
        all_mean(
            [p.grad for grp in opt.param_groups for p in grp["params"] if p.grad is not None], self.ddp.world
        )
        opt.step()

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
        if self._reestimate_and_validate(batch_norm=self._trains_depth_reader_norms()):
            metrics.update(self.last_val)
        self.epoch, self.step, self.sums, self.counts = self.epoch + 1, 0, {}, {}
        if self.ddp.main:
            self._write_metrics(metrics)
            if self.writer is not None:
                for k, v in metrics.items():
                    if isinstance(v, float):
                        self.writer.add_scalar(f"{stage}/{k}", v, self.global_step)
            log.info(
                "%s",
                " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
            )
        self.save()

    def _end_stage(self, stage: str) -> None:
        if self.ema:
            self._swap_in_ema()
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


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True) if path.exists() else []


def _keep_lines(path: Path, count: int) -> None:
    """Keep the first `count` lines of a text file (rewritten atomically)."""
    lines = _lines(path)
    if len(lines) > count:
        with atomic_output(path) as tmp:
            tmp.write_text("".join(lines[:count]))


def _tensorboard_writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RuntimeError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))
