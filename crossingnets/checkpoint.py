"""Checkpoints: training state and released weights.

- Training state (`checkpoint.pt`): a dict of tensors and primitives (model and optimiser state
  dicts, configs as dicts, progress counters, RNG state) that loads with
  `torch.load(weights_only=True)`; written to a temporary name, then renamed.
- Released weights (a folder): `config.json` (model kind + config + metadata),
  `model.safetensors` (the state dict, loaded with strict=True) and `latent_stats.safetensors`
  (a PCA of the training latents and their spread, for the latent-space explorer).

File formats only: the models (`crossingnets.models`) build themselves from what is read here.
Reading a folder never runs code from it (JSON, safetensors, `weights_only` pickles) and checks
what it reads: a damaged, foreign or inconsistent file raises a CheckpointError naming it.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from crossingnets.files import atomic_output, write_json
from crossingnets.pca import LatentStats

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LATENT_FILE = "latent_stats.safetensors"


class CheckpointError(ValueError):
    """A training checkpoint or released-weights folder is unreadable, foreign or inconsistent;
    the message names the file and what is wrong."""


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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused an object: unpickling it could run code
        raise CheckpointError(
            f"{path} holds Python objects besides tensors and primitives; refused, since loading them "
            f"could run code ({str(err).splitlines()[-1][:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable training checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        version = state.get("format_version") if isinstance(state, dict) else None
        raise CheckpointError(f"{path}: checkpoint format {version}, expected {FORMAT_VERSION}")
    return state


MAX_CONFIG_BYTES = 1 << 20  # a released config.json is ~2 kB


def read_pretrained_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The `config.json` of a released-weights folder: its format version, a model kind (a string)
    and a model config of JSON scalars (plus free-form metadata), or a CheckpointError."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a pretrained model folder: no {CONFIG_FILE}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path} is {path.stat().st_size} bytes, not a model config")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: format {version}, expected {FORMAT_VERSION}")
    config, metadata = meta.get("config"), meta.get("metadata", {})
    if (
        not isinstance(meta.get("kind"), str)
        or not isinstance(config, dict)
        or not isinstance(metadata, dict)
    ):
        raise CheckpointError(f"{path} needs a model kind (string), a config and metadata (objects)")
    nested = sorted(k for k, v in config.items() if not isinstance(v, (str, int, float, bool, type(None))))
    if nested:
        raise CheckpointError(f"{path}: config fields {nested} are not numbers, strings or booleans")
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
    write_json(folder / CONFIG_FILE, meta)
    return folder


def add_pretrained_metadata(folder: str | os.PathLike, **entries: Any) -> None:
    """Add (or replace) top-level entries of a released-weights folder's metadata, atomically."""
    meta = read_pretrained_config(folder)
    meta["metadata"].update(entries)
    write_json(Path(folder) / CONFIG_FILE, meta)


def read_pretrained_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in `model.safetensors` of a released-weights folder."""
    path = Path(folder) / WEIGHTS_FILE
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None


def check_weights(folder: str | os.PathLike, expected: dict[str, tuple[int, ...]]) -> None:
    """The tensors of `model.safetensors` must be exactly `expected` (name -> shape), read from the
    file's header without loading them. Called with the shapes of a model built on the meta device
    (no memory), it refuses a config whose sizes do not match the weights before any is allocated,
    so a config can ask for no more memory than its weights file holds."""
    path = Path(folder) / WEIGHTS_FILE
    try:
        with safe_open(path, "pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [
        f"{k} is {list(found[k])}, the config makes {list(v)}"
        for k, v in expected.items()
        if k in found and found[k] != tuple(v)
    ]
    if problems:
        raise CheckpointError(
            f"{path} does not fit its {CONFIG_FILE}: {'; '.join(problems[:4])}"
            + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else "")
        )


def load_latent_stats(folder: str | os.PathLike) -> LatentStats | None:
    """The latent statistics of a released-weights folder, or None if it has none; checked for the
    fields, consistent shapes ((K, L) axes, (K,) variances, (L,) per dimension) and finite values."""
    path = Path(folder) / LATENT_FILE
    if not path.is_file():
        return None
    try:
        stats = LatentStats.load(path)
    except (SafetensorError, OSError, KeyError) as err:
        raise CheckpointError(f"{path} is not a readable latent statistics file ({err!r})") from None
    k, dims = stats.components.shape if stats.components.ndim == 2 else (0, 0)
    shapes = {"components": (k, dims), "explained_variance": (k,), "explained_variance_ratio": (k,)}
    shapes |= {name: (dims,) for name in ("mean", "std", "min", "max")}
    wrong = [name for name, shape in shapes.items() if getattr(stats, name).shape != shape]
    if k == 0 or wrong or not all(np.isfinite(getattr(stats, name)).all() for name in shapes):
        raise CheckpointError(
            f"{path}: latent statistics of inconsistent shapes ({wrong or 'components'}) or non-finite values"
        )
    return stats
