"""Checkpoints: training state and released weights.

- Training state (`checkpoint.pt`): a dict of tensors and primitives (model and optimiser state
  dicts, configs as dicts, progress counters, RNG state) that loads with
  `torch.load(weights_only=True)`; written to a temporary name, then renamed.
- Released weights (a folder): `config.json` (model kind + config + metadata),
  `model.safetensors` (the state dict, loaded with strict=True) and `latent_stats.safetensors`
  (a PCA of the training latents and their spread, for the latent-space explorer).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crossingnets.files import atomic_output

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LATENT_FILE = "latent_stats.safetensors"


def save_training_state(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Atomically write a training state (tensors and primitives only) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
    return path


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state with `weights_only=True`, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {state.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return state


@dataclass(frozen=True)
class LatentStats:
    """Statistics of the training latents (N, L) that the latent-space explorer needs."""

    components: np.ndarray  # (K, L) principal axes (scikit-learn PCA), unit rows
    mean: np.ndarray  # (L,) mean latent
    explained_variance: np.ndarray  # (K,) variance along each axis
    explained_variance_ratio: np.ndarray  # (K,) fraction of the total variance per axis
    std: np.ndarray  # (L,) per-dimension standard deviation of the latents
    min: np.ndarray  # (L,) per-dimension minimum
    max: np.ndarray  # (L,) per-dimension maximum

    @classmethod
    def fit(cls, latents: np.ndarray, n_components: int | None = None) -> LatentStats:
        from crossingnets.models.pose_vae import fit_pca

        latents = np.asarray(latents, dtype=np.float64)
        pca = fit_pca(latents, n_components or latents.shape[1])
        return cls(
            components=pca.components_,
            mean=pca.mean_,
            explained_variance=pca.explained_variance_,
            explained_variance_ratio=pca.explained_variance_ratio_,
            std=latents.std(axis=0),
            min=latents.min(axis=0),
            max=latents.max(axis=0),
        )

    def save(self, path: str | os.PathLike) -> None:
        tensors = {
            f.name: torch.as_tensor(np.ascontiguousarray(getattr(self, f.name), np.float32))
            for f in fields(self)
        }
        with atomic_output(path) as tmp:
            save_file(tensors, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatentStats:
        t = load_file(path)
        return cls(**{f.name: t[f.name].numpy() for f in fields(cls)})


def read_pretrained_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The `config.json` of a released-weights folder, or a clear error."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a pretrained model folder: no {CONFIG_FILE}")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    return meta


class PretrainedMixin:
    """`save_pretrained` / `from_pretrained` for models with `kind` and a `config` dataclass."""

    kind: ClassVar[str]

    def save_pretrained(
        self,
        folder: str | os.PathLike,
        latent_stats: LatentStats | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Write config.json, model.safetensors (and latent_stats.safetensors) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_output(folder / WEIGHTS_FILE) as tmp:
            save_file(state, tmp, metadata={"format": "pt", "kind": self.kind})
        if latent_stats is not None:
            latent_stats.save(folder / LATENT_FILE)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "config": self.config.to_dict(),
            "metadata": metadata or {},
        }
        with atomic_output(folder / CONFIG_FILE) as tmp:
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu"):
        """Rebuild the model from `config.json` and load its weights strictly, in eval mode.

        Called on a concrete class, the folder must hold that kind; called on the common base,
        any kind is accepted.
        """
        from crossingnets.models import MODELS, CrossingNetConfig

        meta = read_pretrained_config(folder)
        kind = meta["kind"]
        if kind not in MODELS:
            raise ValueError(f"{folder}: unknown model kind {kind!r}; expected one of {sorted(MODELS)}")
        if "kind" in cls.__dict__ and kind != cls.kind:
            raise ValueError(f"{folder} holds a {kind!r} model, not a {cls.kind!r}")
        model = MODELS[kind](CrossingNetConfig.from_dict(meta["config"]))
        model.load_state_dict(load_file(Path(folder) / WEIGHTS_FILE), strict=True)
        return model.to(device).eval()


def load_latent_stats(folder: str | os.PathLike) -> LatentStats | None:
    """The latent statistics of a released-weights folder, or None if it has none."""
    path = Path(folder) / LATENT_FILE
    return LatentStats.load(path) if path.is_file() else None
