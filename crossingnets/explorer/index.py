"""The explorer index: a sample of training frames with their latents, so the app can show the data
behind a point of the latent space (its nearest training frames).

`crossingnets explorer-index --checkpoint DIR --data STORE.h5` writes `DIR/explorer_index.npz`:
crops as uint8 thumbnails, the pose VAE's encoding of each frame's label (the latent the generator
learnt that crop from), the frames' numbers and a fingerprint of the model's weights. The app
loads it at start (`load_index`); an index written for other weights is refused, with the command
that rewrites it, and the app runs without the nearest-frames panel. Rerun the command after
replacing a checkpoint's weights.

Usage:
    crossingnets explorer-index --checkpoint checkpoints/cn-nyu-synth --data runs/data/rand_train.h5
    crossingnets explorer-index --checkpoint DIR --data STORE.h5 --out /tmp/index.npz --frames 2048
The app reads DIR/explorer_index.npz, or the file named by $CROSSINGNETS_EXPLORER_INDEX.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossingnets.data.preprocess import BACKGROUND
from crossingnets.files import atomic_output

if TYPE_CHECKING:
    from crossingnets.inference import HandPoseEstimator

log = logging.getLogger(__name__)

INDEX_FILE = "explorer_index.npz"
INDEX_ENV = "CROSSINGNETS_EXPLORER_INDEX"  # another index file for the app (e.g. one under test)
FORMAT_VERSION = 1
DEFAULT_FRAMES = 1536
_LEVELS = 254  # thumbnail levels of depth in [-1, 1); 255 is the background


def index_command(checkpoint: str | os.PathLike, data: str = "STORE.h5") -> str:
    return f"crossingnets explorer-index --checkpoint {checkpoint} --data {data}"


def thumbnails_from_crops(crops: np.ndarray) -> np.ndarray:
    """(N, S, S) crops in [-1, 1] (background +1) -> uint8 (1.2 mm steps for a 300 mm cube)."""
    crops = np.asarray(crops, np.float64)
    q = np.round((np.clip(crops, -1.0, 1.0) + 1.0) / 2.0 * _LEVELS)
    return np.where(crops >= BACKGROUND, 255, np.minimum(q, _LEVELS)).astype(np.uint8)


def crops_from_thumbnails(thumbs: np.ndarray) -> np.ndarray:
    """Inverse of `thumbnails_from_crops` (to the thumbnails' resolution), float32."""
    t = np.asarray(thumbs)
    return np.where(t == 255, BACKGROUND, t / _LEVELS * 2.0 - 1.0).astype(np.float32)


def model_fingerprint(folder: str | os.PathLike) -> str:
    """SHA-256 of a released-weights folder's model.safetensors (11 MB: ~30 ms)."""
    from crossingnets.checkpoint import WEIGHTS_FILE
    from crossingnets.inference import resolve_model_folder

    digest = hashlib.sha256()
    with open(resolve_model_folder(folder) / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ExplorerIndex:
    thumbs: np.ndarray  # (N, S, S) uint8 crops (`thumbnails_from_crops`)
    latents: np.ndarray  # (N, L) float32 pose VAE encodings of the frames' labels
    frames: np.ndarray  # (N,) int64 frame numbers in the store
    store: str  # the store's file name, for captions
    cube_mm: float  # the crops' cube
    model_sha256: str  # `model_fingerprint` of the weights that made the latents

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically (compressed npz)."""
        with atomic_output(path) as tmp:
            np.savez_compressed(
                tmp, format_version=FORMAT_VERSION, **{f.name: getattr(self, f.name) for f in fields(self)}
            )
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExplorerIndex:
        """Read an index; a file that is not one raises ValueError naming what is wrong."""
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} is not a readable explorer index ({err})") from None
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing or int(data.get("format_version", -1)) != FORMAT_VERSION:
            raise ValueError(
                f"{path} is not an explorer index of format {FORMAT_VERSION} (missing {missing or 'nothing'}, "
                f"format {data.get('format_version')})"
            )
        return cls(
            thumbs=data["thumbs"],
            latents=data["latents"].astype(np.float64),
            frames=data["frames"],
            store=str(data["store"]),
            cube_mm=float(data["cube_mm"]),
            model_sha256=str(data["model_sha256"]),
        )


def index_path(checkpoint: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Where the app looks: `path`, else $CROSSINGNETS_EXPLORER_INDEX, else the checkpoint's folder."""
    from crossingnets.inference import resolve_model_folder

    if path is None:
        path = os.environ.get(INDEX_ENV) or resolve_model_folder(checkpoint) / INDEX_FILE
    return Path(path)


def load_index(
    checkpoint: str | os.PathLike, latent_dims: int, path: str | os.PathLike | None = None
) -> tuple[ExplorerIndex | None, str]:
    """(the index for this checkpoint, "") or (None, why not, with the command that writes it)."""
    path = index_path(checkpoint, path)
    rebuild = f"write one with `{index_command(checkpoint)}`"
    if not path.is_file():
        return None, f"no explorer index at {path}: {rebuild}"
    try:
        index = ExplorerIndex.load(path)
    except ValueError as err:
        return None, f"{err}: {rebuild}"
    if index.model_sha256 != model_fingerprint(checkpoint) or index.latents.shape[1] != latent_dims:
        return None, f"the explorer index {path} was written for other weights: {rebuild}"
    return index, ""


# ---------------------------------------------------------------------------------------------
# Writing one


def _chunk_frames(num_frames: int, chunk: int, wanted: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted frame numbers of whole random chunks (gzip chunks are read whole anyway): `wanted`
    frames, or every frame of a smaller store."""
    order = rng.permutation(math.ceil(num_frames / chunk))
    sizes = np.minimum(chunk, num_frames - order * chunk)  # the last chunk may be short
    picked = np.sort(order[: int(np.searchsorted(np.cumsum(sizes), min(wanted, num_frames))) + 1])
    frames = np.concatenate([np.arange(c * chunk, min((c + 1) * chunk, num_frames)) for c in picked])
    return frames[:wanted]


def build_index(
    estimator: HandPoseEstimator,
    checkpoint: str | os.PathLike,
    store: str | os.PathLike,
    frames: int = DEFAULT_FRAMES,
    seed: int = 0,
) -> ExplorerIndex:
    """Read `frames` training frames of `store` (whole random chunks) and encode their labels."""
    import h5py  # imported here: the app loads an index without HDF5
    import torch
    from tqdm import tqdm

    from crossingnets.data.store import FIELDS, read_info
    from crossingnets.data.training import frames_from_arrays

    info = read_info(store)
    model_cfg = estimator.model.config
    want = (model_cfg.convention, model_cfg.crop_px, model_cfg.cube_mm)
    have = (info.convention.name, info.crop.crop_px, info.crop.cube_mm)
    if want != have:
        raise ValueError(
            f"{store} holds {have[0].upper()} crops of {have[1]} px / {have[2]:g} mm; the model at {checkpoint} "
            f"reads {want[0].upper()} crops of {want[1]} px / {want[2]:g} mm: use the store it was trained on"
        )
    if frames < 1:
        raise ValueError(f"--frames must be at least 1, got {frames}")
    with h5py.File(store, "r") as f:
        chunk = (f["depth"].chunks or (1024,))[0]
        picked = _chunk_frames(info.num_frames, chunk, frames, np.random.default_rng(seed))
        runs = np.split(picked, np.nonzero(np.diff(picked) != 1)[0] + 1)
        parts = [
            {k: f[k][run[0] : run[-1] + 1] for k in FIELDS}
            for run in tqdm(runs, desc=f"reading {Path(store).name}", unit="run")
        ]
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}
    data = frames_from_arrays(arrays, info, model_cfg.pose_unit_mm)
    with torch.inference_mode():
        latents = estimator.model.encode_pose(data.pose.to(estimator.device), data.root.to(estimator.device))
    return ExplorerIndex(
        thumbs=thumbnails_from_crops(arrays["depth"][:, 0]),
        latents=latents.cpu().numpy().astype(np.float32),
        frames=picked.astype(np.int64),
        store=Path(store).name,
        cube_mm=float(info.crop.cube_mm),
        model_sha256=model_fingerprint(checkpoint),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="released-weights folder of a Crossing Net"
    )
    parser.add_argument("--data", type=Path, required=True, help="the HDF5 store the model was trained on")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"index file (default: CHECKPOINT/{INDEX_FILE}, where the app looks)",
    )
    parser.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help="training frames to index (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="which chunks of the store are read")


def main(args: argparse.Namespace) -> int:
    from crossingnets.inference import HandPoseEstimator, resolve_model_folder

    out = args.out or resolve_model_folder(args.checkpoint) / INDEX_FILE
    try:
        estimator = HandPoseEstimator.from_pretrained(args.checkpoint)
        if estimator.model.kind != "crossingnet":
            raise ValueError(
                f"{args.checkpoint} is a {estimator.model.kind!r} baseline; the explorer needs a Crossing Net"
            )
        index = build_index(estimator, args.checkpoint, args.data, args.frames, args.seed)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"explorer-index: {err}") from None
    index.save(out)
    size = out.stat().st_size / 2**20
    print(
        f"wrote {out}: {len(index.frames)} frames of {args.data}, latents {index.latents.shape[1]}-d, {size:.1f} MB"
    )
    return 0
