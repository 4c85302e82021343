"""The HDF5 store: the one contract between data producers (`generate`, `convert`) and consumers.

Layout (N frames, J joints, S = crop_px):
- `depth` float32 (N, 1, S, S): network input in [-1, 1], background +1;
- `joints_xyz` float32 (N, J, 3): camera frame, mm (x right, y down, z forward);
- `joints_uvd` float32 (N, J, 3): full-frame pixels and mm;
- `com_uvd` float32 (N, 3): the crop centre;
- attributes: convention, fx, fy, cx, cy, width_px, height_px, cube_mm, crop_px, source, version,
  seed, plus producer settings (JSON strings for nested values).
Files are written to a temporary name and renamed when complete, so an interrupted run never
leaves a file under the final name. Damage is detected rather than read: the file uses HDF5's
latest format (checksummed metadata), every chunk carries a Fletcher-32 checksum, and strings are
stored in their attribute (the global heap of variable-length strings has no checksum, and a
flipped length there made HDF5 loop for minutes). Stores written before this are still read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from crossingnets.camera import Intrinsics
from crossingnets.data.preprocess import CropConfig
from crossingnets.data.raw import CORRUPT_FILE_ERRORS
from crossingnets.hand.conventions import Convention, get_convention

STORE_VERSION = 1
FIELDS = ("depth", "joints_xyz", "joints_uvd", "com_uvd")
_CHUNK_FRAMES = 64


def _check_output(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, expected an .h5 file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write {path}: folder {parent} is not writable")


class StoreWriter:
    """Append batches of frames to a new store; atomic on `close()`, discarded on error.

    Use as a context manager:
        with StoreWriter(path, convention, cam, crop_cfg, attrs) as w:
            w.append(depth=..., joints_xyz=..., joints_uvd=..., com_uvd=...)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        convention: Convention,
        cam: Intrinsics,
        crop: CropConfig,
        attrs: dict[str, Any],
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        _check_output(self.path, overwrite)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.num_frames = 0
        self._file = h5py.File(self.tmp, "w", track_order=True, libver="latest")
        s, j = crop.crop_px, convention.num_joints
        shapes = {"depth": (1, s, s), "joints_xyz": (j, 3), "joints_uvd": (j, 3), "com_uvd": (3,)}
        for name, shape in shapes.items():
            self._file.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype="float32",
                chunks=(_CHUNK_FRAMES, *shape),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
                fletcher32=True,
                track_times=False,
            )
        meta = {
            "convention": convention.name,
            **{k: v for k, v in cam.to_dict().items()},
            "cube_mm": float(crop.cube_mm),
            "crop_px": int(crop.crop_px),
            "version": STORE_VERSION,
            **attrs,
        }
        for key, value in meta.items():
            value = value if isinstance(value, (str, int, float)) else json.dumps(value)
            if isinstance(value, str):  # fixed length, inside the checksummed attribute
                value = np.array(
                    value.encode(), dtype=h5py.string_dtype("utf-8", max(1, len(value.encode())))
                )
            self._file.attrs[key] = value

    def append(self, **batch: np.ndarray) -> None:
        """Append frames; every field of FIELDS, each with the same leading length."""
        missing = set(FIELDS) - set(batch)
        if missing:
            raise ValueError(f"append needs fields {sorted(missing)}")
        n = len(batch["depth"])
        for name in FIELDS:
            arr = np.asarray(batch[name], dtype=np.float32)
            ds = self._file[name]
            if arr.shape != (n, *ds.shape[1:]):
                raise ValueError(f"{name} has shape {arr.shape}, expected {(n, *ds.shape[1:])}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            ds.resize(self.num_frames + n, axis=0)
            ds[self.num_frames :] = arr
        self.num_frames += n

    def close(self) -> Path:
        self._file.attrs["num_frames"] = self.num_frames
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True)
class StoreInfo:
    convention: Convention
    camera: Intrinsics
    crop: CropConfig
    num_frames: int
    attrs: dict[str, Any]


class StoreError(ValueError):
    """A file is not a readable crossingnets store: not HDF5, corrupt, or its fields and attributes
    disagree. The message names the file."""


def read_info(path: str | os.PathLike) -> StoreInfo:
    """The metadata of a store, checked against its fields' shapes, or a StoreError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no HDF5 store at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise StoreError(f"{path} is not an HDF5 file ({err})") from None
    try:
        with f:
            missing = [k for k in FIELDS if not isinstance(f.get(k), h5py.Dataset)]
            if missing:
                raise StoreError(f"{path} is not a crossingnets store: missing datasets {missing}")
            shapes = {k: f[k].shape for k in FIELDS}
            attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        info = _info(attrs, shapes["depth"][0])
    except StoreError:
        raise
    except CORRUPT_FILE_ERRORS as err:  # h5py on a damaged file; a missing or mistyped attribute
        raise StoreError(
            f"{path} is not a readable crossingnets store ({type(err).__name__}: {err})"
        ) from None
    s, j, n = info.crop.crop_px, info.convention.num_joints, info.num_frames
    expected = {"depth": (n, 1, s, s), "joints_xyz": (n, j, 3), "joints_uvd": (n, j, 3), "com_uvd": (n, 3)}
    if shapes != expected:
        raise StoreError(f"{path}: fields have shapes {shapes}, its attributes say {expected}")
    if info.attrs.get("num_frames", n) != n:  # written last, when the writer closes the store
        raise StoreError(f"{path} holds {n} frames but was closed with {info.attrs['num_frames']}")
    return info


def _attr_value(value: Any) -> Any:
    """An attribute as Python: numbers, and strings whether stored fixed (bytes) or variable length."""
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


def _info(attrs: dict[str, Any], num_frames: int) -> StoreInfo:
    cam = Intrinsics(
        float(attrs["fx"]),
        float(attrs["fy"]),
        float(attrs["cx"]),
        float(attrs["cy"]),
        int(attrs["width_px"]),
        int(attrs["height_px"]),
    )
    crop = CropConfig(cube_mm=float(attrs["cube_mm"]), crop_px=int(attrs["crop_px"]))
    return StoreInfo(get_convention(str(attrs["convention"])), cam, crop, num_frames, attrs)


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All fields of a store, read whole into memory (random access to gzip chunks is slow)."""
    read_info(path)
    try:
        with h5py.File(path, "r") as f:
            return {name: f[name][()] for name in FIELDS}
    except CORRUPT_FILE_ERRORS as err:
        raise StoreError(f"{path}: its data is unreadable ({type(err).__name__}: {err})") from None


class HandDepthDataset(Dataset):
    """A store in memory as a torch Dataset; items are dicts of float32 tensors.

    Item keys: depth (1, S, S), joints_xyz (J, 3), joints_uvd (J, 3), com_uvd (3,), index ().
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.info = read_info(path)
        self.arrays = {k: torch.from_numpy(v) for k, v in load_arrays(path).items()}

    def __len__(self) -> int:
        return self.info.num_frames

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {k: v[i] for k, v in self.arrays.items()}
        item["index"] = torch.tensor(i)
        return item
