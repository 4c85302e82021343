"""Training data in memory: store frames as tensors, the seeded label subset and validation split,
the GAN's real-image pool, and the seeded batch order that makes runs resumable bit for bit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from crossingnets.camera import uvd_to_xyz
from crossingnets.data.store import StoreInfo, load_arrays, read_info


@dataclass
class Frames:
    """Frames of a store as tensors; poses in units of `pose_unit_mm`."""

    depth: torch.Tensor  # (N, 1, S, S) crops in [-1, 1]
    pose: torch.Tensor  # (N, 3J) joints relative to the root joint
    root: torch.Tensor  # (N, 3) root joint relative to the crop centre
    center_xyz: torch.Tensor  # (N, 3) crop centre, camera frame, mm
    joints_xyz: torch.Tensor  # (N, J, 3) ground truth, camera frame, mm

    def __len__(self) -> int:
        return len(self.depth)

    def subset(self, idx: np.ndarray) -> Frames:
        i = torch.as_tensor(idx, dtype=torch.long)
        return Frames(*(getattr(self, f.name)[i] for f in fields(self)))


def frames_from_arrays(arrays: dict[str, np.ndarray], info: StoreInfo, pose_unit_mm: float) -> Frames:
    """Store arrays -> Frames: pose relative to the root joint, root relative to the crop centre."""
    center = uvd_to_xyz(arrays["com_uvd"], info.camera)  # (N, 3)
    joints = arrays["joints_xyz"].astype(np.float64)
    root = joints[:, info.convention.root]  # (N, 3)
    pose = (joints - root[:, None]) / pose_unit_mm
    return Frames(
        depth=_f32(arrays["depth"]),
        pose=_f32(pose.reshape(len(pose), -1)),
        root=_f32((root - center) / pose_unit_mm),
        center_xyz=_f32(center),
        joints_xyz=_f32(joints),
    )


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)


def labeled_subset(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the `fraction` of n frames whose labels are kept (at least one)."""
    k = max(1, round(fraction * n))
    return np.sort(np.random.default_rng([seed, 1]).permutation(n)[:k])


@dataclass
class TrainData:
    info: StoreInfo
    train: Frames  # every training frame (labels used only for `labeled`)
    labeled: torch.Tensor  # (N_l,) indices into `train` whose labels are kept
    images: torch.Tensor  # (M, 1, S, S) the GAN's real side
    val: Frames | None


def load_data(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    unlabeled: str | os.PathLike | None,
    val: str | os.PathLike | None,
    pose_unit_mm: float,
    *,
    seed: int,
    label_fraction: float,
    val_fraction: float,
    use_unlabeled: bool = True,
    pseudo: str | os.PathLike | None = None,
) -> TrainData:
    """Read the stores and make the label subset, the validation split and the real-image pool.

    Without a `val` store, a seeded `val_fraction` of `data` is held out. Every training frame's
    depth (plus `unlabeled`'s) is the GAN's real side, or only the labeled frames' when
    `use_unlabeled` is False (the ablation). Several `data` stores are concatenated in order (e.g.
    hands of two orientation ranges mixed); they must share crop and convention. `pseudo`: a store
    of pseudo-labelled frames (`crossingnets pseudo-label`), appended to the training frames as
    labelled ones, whatever `label_fraction` (their crops are already in the real-image pool)."""
    stores = [data] if isinstance(data, str | os.PathLike) else list(data)
    if not stores:
        raise ValueError("no training store given")
    info = read_info(stores[0])
    unit = pose_unit_mm
    frames = frames_from_arrays(load_stores(stores, info), info, unit)
    if val is not None:
        val_info = read_info(val)
        _check_same_crop(info, val_info, val)
        val_frames: Frames | None = frames_from_arrays(load_arrays(val), val_info, unit)
        train = frames
    else:
        n_val = int(round(val_fraction * len(frames)))
        order = np.random.default_rng([seed, 2]).permutation(len(frames))
        val_frames = frames.subset(np.sort(order[:n_val])) if n_val else None
        train = frames.subset(np.sort(order[n_val:]))
    if len(train) == 0:
        raise ValueError(
            f"{data}: no training frame left after holding out {val_fraction:.0%} for validation"
        )
    labeled = torch.as_tensor(labeled_subset(len(train), label_fraction, seed))
    if not use_unlabeled:
        images = train.depth[labeled]
    elif unlabeled is not None:
        _check_same_crop(info, read_info(unlabeled), unlabeled)
        images = torch.cat([train.depth, torch.from_numpy(load_arrays(unlabeled)["depth"])])
    else:
        images = train.depth
    if pseudo is not None:
        pseudo_info = read_info(pseudo)
        _check_same_crop(info, pseudo_info, pseudo)
        extra = frames_from_arrays(load_arrays(pseudo), pseudo_info, unit)
        labeled = torch.cat([labeled, torch.arange(len(train), len(train) + len(extra))])
        train = Frames(*(torch.cat([getattr(train, f.name), getattr(extra, f.name)]) for f in fields(Frames)))
    return TrainData(info, train, labeled, images, val_frames)


def load_stores(stores: Sequence[str | os.PathLike], info: StoreInfo) -> dict[str, np.ndarray]:
    """The arrays of `stores` concatenated; each must have `info`'s crop, convention and camera."""
    arrays = [load_arrays(stores[0])]
    for path in stores[1:]:
        other = read_info(path)
        _check_same_crop(info, other, path)
        if other.camera != info.camera:
            raise ValueError(f"{path} was cropped with another camera than {stores[0]}")
        arrays.append(load_arrays(path))
    if len(arrays) == 1:
        return arrays[0]
    shared = set.intersection(*(set(a) for a in arrays))
    return {k: np.concatenate([a[k] for a in arrays]) for k in shared}


def _check_same_crop(a: StoreInfo, b: StoreInfo, path: str | os.PathLike) -> None:
    if (a.crop.crop_px, a.crop.cube_mm) != (b.crop.crop_px, b.crop.cube_mm):
        raise ValueError(
            f"{path} has {b.crop.crop_px} px crops of a {b.crop.cube_mm:g} mm cube; the training store has "
            f"{a.crop.crop_px} px of {a.crop.cube_mm:g} mm"
        )
    if b.convention.name != a.convention.name:
        raise ValueError(
            f"{path} uses the {b.convention.name} convention, the training store {a.convention.name}"
        )


def batch_indices(
    n: int, batch: int, seed: int, stream: int, epoch: int, step: int, rank: int, world: int
) -> torch.Tensor:
    """Indices (batch,) of step `step` of `epoch` for process `rank`: a seeded permutation per epoch,
    repeated when n is smaller than the samples the epoch needs, sharded over processes."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(seed, stream, epoch)))
    start = (step * world + rank) * batch
    reps = (start + batch + n - 1) // n
    return perm.repeat(reps)[start : start + batch]


def mix_seed(*ints: int) -> int:
    """A 63-bit seed from a few integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(ints)).generate_state(1, np.uint64)[0] >> np.uint64(1))
