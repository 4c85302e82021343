"""Checkpoints: training state and released weights.

- Training state (`checkpoint.pt`): a dict of tensors and primitives (model and optimiser state
  dicts, configs as dicts, progress counters, RNG state) that loads with
  `torch.load(weights_only=True)`; written to a temporary name, then renamed.
- Released weights (a folder): `config.json` (model kind + config + metadata),
  `model.safetensors` (the state dict, loaded with strict=True) and `latent_stats.safetensors`
  (a PCA of the training latents and their spread, for the latent-space explorer).

File formats only: the models (`crossingnets.models`) build themselves from what is read here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from crossingnets.files import atomic_output
from crossingnets.pca import LatentStats

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


def read_pretrained_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The `config.json` of a released-weights folder, or a clear error."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a pretrained model folder: no {CONFIG_FILE}")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    return meta


def write_pretrained(
    folder: str | os.PathLike,
    kind: str,
    config: dict[str, Any],
    weights: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    latent_stats: LatentStats | None = None,
) -> Path:
    """Write `model.safetensors` (and `latent_stats.safetensors`), then `config.json` (model kind +
    config + metadata) into `folder`: a folder with a config is complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    with atomic_output(folder / WEIGHTS_FILE) as tmp:
        save_file(weights, tmp, metadata={"format": "pt", "kind": kind})
    if latent_stats is not None:
        latent_stats.save(folder / LATENT_FILE)
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "config": config, "metadata": metadata or {}}
    with atomic_output(folder / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def read_pretrained_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in `model.safetensors` of a released-weights folder."""
    return load_file(Path(folder) / WEIGHTS_FILE)


def load_latent_stats(folder: str | os.PathLike) -> LatentStats | None:
    """The latent statistics of a released-weights folder, or None if it has none."""
    path = Path(folder) / LATENT_FILE
    return LatentStats.load(path) if path.is_file() else None
