"""Raw labelled frames as the datasets ship them, and the base of every dataset reader.

The readers (`nyu.py`, `icvl.py`, `msra.py`) build on this module and `convert` reads them
through it, so a reader never imports the command that uses it, and reading one depth file
(`depth_file.py`) pulls in neither the convert loop nor its HDF5, MATLAB and progress-bar
dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from crossingnets.camera import Intrinsics, uvd_to_xyz, xyz_to_uvd
from crossingnets.files import iter_label_lines
from crossingnets.hand.conventions import Convention

SPLITS = ("train", "test")


class BadFrameError(ValueError):
    """A raw frame or its label is missing, unreadable or inconsistent; the message names the file."""


class LabelFileError(ValueError):
    """A dataset's label file is unreadable or not laid out as the dataset ships it; the message
    names the file. Every frame of the split depends on it, so no frame can be skipped instead."""


# What decoding a corrupt binary file can raise from numpy, h5py or scipy besides their own errors:
# the bytes trip whatever check or lookup comes first.
CORRUPT_FILE_ERRORS = (
    ValueError,
    OSError,
    KeyError,
    TypeError,
    IndexError,
    EOFError,
    OverflowError,
    RuntimeError,
)


@dataclass(frozen=True)
class RawFrame:
    """One labelled raw frame, as the dataset ships it, in our frames and units."""

    name: str  # path of the depth file relative to the dataset root
    depth_mm: np.ndarray  # (H, W) float32 mm, 0 = missing
    joints_uvd: np.ndarray  # (J, 3) full-frame pixels and mm
    joints_xyz_mm: np.ndarray  # (J, 3) camera frame mm: x right, y down, z forward


class FrameReader(Protocol):
    """What the convert loop needs from a dataset reader."""

    convention: Convention
    camera: Intrinsics

    def __len__(self) -> int: ...

    def frame_name(self, index: int) -> str: ...

    def load(self, index: int) -> RawFrame:
        """Frame `index`; raises BadFrameError naming the file if it is missing or malformed."""
        ...


def labelled_frame(
    name: str,
    depth_mm: np.ndarray,
    cam: Intrinsics,
    *,
    joints_uvd: np.ndarray | None = None,
    joints_xyz_mm: np.ndarray | None = None,
) -> RawFrame:
    """A RawFrame from either label frame (the other is computed with `cam`), size-checked.

    NYU and ICVL label uvd, MSRA labels xyz; deriving the other one with the same camera keeps
    the store's two label arrays exactly consistent with the community's uvd -> xyz lift.
    """
    if (joints_uvd is None) == (joints_xyz_mm is None):
        raise ValueError("give exactly one of joints_uvd, joints_xyz_mm")
    if depth_mm.shape != (cam.height_px, cam.width_px):
        raise BadFrameError(
            f"{name}: depth frame is {depth_mm.shape[1]}x{depth_mm.shape[0]}, "
            f"expected {cam.width_px}x{cam.height_px}"
        )
    label = np.asarray(joints_xyz_mm if joints_uvd is None else joints_uvd, dtype=np.float64)
    if (label[:, 2] <= 0).any():  # NaN passes here and is refused below
        raise BadFrameError(f"{name}: a joint lies at depth z <= 0 mm, behind the camera")
    with np.errstate(over="ignore", invalid="ignore"):  # a huge label overflows; refused below
        uvd, xyz = (
            (label, uvd_to_xyz(label, cam)) if joints_xyz_mm is None else (xyz_to_uvd(label, cam), label)
        )
        finite = np.isfinite(uvd.astype(np.float32)).all() and np.isfinite(xyz.astype(np.float32)).all()
    if not finite:
        raise BadFrameError(
            f"{name}: a joint label is NaN or infinite (in uvd or xyz, as the store's float32)"
        )
    return RawFrame(
        name=name, depth_mm=depth_mm.astype(np.float32, copy=False), joints_uvd=uvd, joints_xyz_mm=xyz
    )


def read_label_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, text) of each non-blank line of a label file (`iter_label_lines`), or a
    LabelFileError where it is not UTF-8 text (a corrupt or binary file)."""
    try:
        return list(iter_label_lines(path))
    except UnicodeDecodeError as err:
        raise LabelFileError(f"labels {path} are not UTF-8 text (byte {err.start}: {err.reason})") from None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk_problem(path: Path) -> str | None:
    """Why a PNG file's chunks are damaged (one claims more bytes than the file has left), or None
    (also for a file that is not a PNG). PIL reads what a chunk's length claims in one call, so a
    flipped bit in a length has it allocate up to 2 GB for a file of a few KB (found by
    tests/test_fuzz_datasets.py); this reads 8 bytes per chunk."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return None
        pos = 8
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(8)
            length, kind = int.from_bytes(head[:4], "big"), head[4:].decode("latin-1")
            if pos + 12 + length > size:
                return f"its {kind!r} chunk claims {length:,} bytes, the file has {max(size - pos - 12, 0):,} left"
            if kind == "IEND":
                break
            pos += 12 + length
    return None


def read_image_array(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """The pixels of an image file as a numpy array (uint8 (H, W, 3) for RGB, uint16 for 16-bit).

    `size` (width, height) is checked in the file's header, before its pixels are decoded: a
    damaged header can claim an image of gigabytes.
    """
    try:
        if problem := png_chunk_problem(path):
            raise BadFrameError(f"depth image {path} is a damaged PNG: {problem}")
        with Image.open(path) as img:
            if size is not None and img.size != tuple(size):
                raise BadFrameError(
                    f"depth image {path} is {img.width}x{img.height} px, expected {size[0]}x{size[1]}"
                )
            return np.asarray(img)
    except FileNotFoundError:
        raise BadFrameError(f"depth image {path} not found") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, *CORRUPT_FILE_ERRORS) as err:
        if isinstance(err, BadFrameError):
            raise
        raise BadFrameError(f"depth image {path} is unreadable ({err})") from None


class DatasetReader:
    """The frames of one split of a raw dataset, a `FrameReader`: labels indexed up front (they
    are small), depth read one frame at a time in `load`, so a dataset is never held in memory.

    A subclass sets `convention`, `camera` and `labels_xyz`, fills `labels` in `__init__` and
    defines `frame_name` and `read_depth`. A label that could not be parsed is kept as its error
    message and raised as a BadFrameError for that frame only, so `--skip-bad` can leave it out.
    """

    convention: Convention
    camera: Intrinsics
    labels_xyz: bool = False  # labels are camera-frame mm (MSRA), not uvd (NYU, ICVL)
    labels: Sequence[np.ndarray | str]  # per frame: (J, 3) joints, or why its label is bad

    def __len__(self) -> int:
        return len(self.labels)

    def frame_name(self, index: int) -> str:
        """Path of frame `index`'s depth file relative to the dataset root."""
        raise NotImplementedError

    def read_depth(self, index: int) -> np.ndarray:
        """(H, W) float32 depth mm of frame `index`; BadFrameError naming the file if unreadable."""
        raise NotImplementedError

    def load(self, index: int) -> RawFrame:
        label = self.labels[index]
        if isinstance(label, str):
            raise BadFrameError(label)
        joints = {"joints_xyz_mm" if self.labels_xyz else "joints_uvd": label}
        return labelled_frame(self.frame_name(index), self.read_depth(index), self.camera, **joints)


def check_split(dataset: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{dataset} split must be one of {SPLITS}, got {split!r}")


def refuse_options(dataset: str, why: str, **options: object) -> None:
    """Options of `convert` that `dataset` does not have are refused, never silently ignored."""
    given = [f"--{name}" for name, value in options.items() if value is not None]
    if given:
        raise ValueError(f"{' and '.join(given)}: not an option of {dataset} ({why})")
