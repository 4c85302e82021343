"""NYU Hand Pose dataset (Tompson et al. 2014), as it ships.

Layout: `ROOT/{train,test}/joint_data.mat` and `ROOT/{train,test}/depth_<camera>_<frame:07d>.png`
(frames numbered from 1). `joint_data.mat` holds `joint_uvd` (and `joint_xyz`) as
[camera, frame, 36 joints, 3], either as a MATLAB v5 file (scipy.io) or as MATLAB v7.3 (HDF5,
stored column-major, so h5py sees the axes reversed). Depth PNGs are 640x480 RGB with
depth mm = (G << 8) | B. The community evaluates camera 1 and 14 of the 36 joints (NYU_36_TO_14).

Labels are read from `joint_uvd` and lifted to xyz with the Kinect intrinsics, the community's
path (its scripts score uvd files), so the store's xyz and uvd agree exactly.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data.raw import (
    CORRUPT_FILE_ERRORS,
    BadFrameError,
    DatasetReader,
    LabelFileError,
    check_split,
    read_image_array,
    refuse_options,
)
from crossingnets.hand.conventions import NYU, NYU_36_TO_14, Convention

NUM_RAW_JOINTS = 36
DEFAULT_CAMERA = 1  # the frontal Kinect, the one every published NYU result uses


def read_joint_uvd(path: Path, camera: int = DEFAULT_CAMERA) -> np.ndarray:
    """`joint_uvd` of one camera (1-based) from joint_data.mat (v5 or v7.3) -> (N, 36, 3).

    Only that camera's slice is kept; with v7.3 only it is read from disk. A corrupt or foreign
    file raises a LabelFileError naming it.
    """
    # Imported here: decoding one uploaded NYU depth PNG (depth_file.py) needs neither library.
    import h5py
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise FileNotFoundError(f"NYU labels {path} not found")
    try:
        return _read_v73(path, camera) if h5py.is_hdf5(path) else _read_v5(path, camera)
    except LabelFileError:
        raise
    except (*CORRUPT_FILE_ERRORS, NameError, MatReadError, zlib.error) as err:
        raise LabelFileError(f"{path} is not a readable MATLAB file ({type(err).__name__}: {err})") from None


def _read_v73(path: Path, camera: int) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        ds = f.get("joint_uvd")  # MATLAB [camera, frame, joint, coord] seen reversed: (3, 36, N, C)
        if not isinstance(ds, h5py.Dataset):
            raise LabelFileError(f"{path} has no joint_uvd variable (holds {sorted(f)})")
        _check_layout(path, ds.shape[::-1], camera)
        return np.ascontiguousarray(ds[..., camera - 1].T, dtype=np.float64)


def _read_v5(path: Path, camera: int) -> np.ndarray:
    import scipy.io
    from scipy.io.matlab import matfile_version

    if matfile_version(path)[0] != 1:  # v4 headers declare sizes that scipy allocates unchecked
        raise LabelFileError(f"{path} is not a MATLAB v5 or v7.3 file, the formats NYU ships")
    _check_v5_matrix(path, "joint_uvd")
    mat = scipy.io.loadmat(path, variable_names=["joint_uvd"])
    if "joint_uvd" not in mat:
        raise LabelFileError(f"{path} has no joint_uvd variable")
    _check_layout(path, mat["joint_uvd"].shape, camera)
    return np.asarray(mat["joint_uvd"][camera - 1], dtype=np.float64)


def _check_layout(path: Path, shape: tuple[int, ...], camera: int) -> None:
    if len(shape) != 4 or shape[2:] != (NUM_RAW_JOINTS, 3):
        raise LabelFileError(f"{path}: joint_uvd has shape {shape}, expected [camera, frame, 36, 3]")
    if not 1 <= camera <= shape[0]:
        raise LabelFileError(f"{path} holds cameras 1..{shape[0]}; camera {camera} requested")


# MATLAB v5 ("MAT-File Format", MathWorks): a 128-byte header, then data elements, each a tag (type,
# byte count) and its bytes, padded to 8; a compressed element holds one zlib-compressed element.
# A matrix element holds sub-elements: array flags, dimensions, name, real part (imaginary part).
MI_BYTES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}  # numeric type -> bytes a value
MI_MATRIX, MI_COMPRESSED = 14, 15
NUMERIC_CLASSES = range(6, 16)  # mxDOUBLE_CLASS .. mxUINT64_CLASS
MATRIX_HEADER_BYTES = 512  # flags, dimensions (up to 4-d), name (< 64 chars) and the real part's tag
DEFLATE_MAX_RATIO = 1032  # zlib's largest compression ratio (zlib technical details, "maximum compression")


def _check_v5_matrix(path: Path, name: str) -> None:
    """Check the matrix headers of a v5 file before scipy decodes it, strictly as the format lays
    them out: scipy's decoder crashes the process (SIGSEGV) on a corrupt data type code, array
    flag or sub-element size there (found by tests/test_fuzz_datasets.py). Reads a few hundred
    bytes per variable, whatever the file's size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        order = "little" if f.read(128)[126:128] == b"IM" else "big"
        pos = 128
        while pos + 8 <= size:
            f.seek(pos)
            kind, nbytes, _ = _v5_tag(f.read(8), 0, order)
            head = f.read(min(nbytes, 1 << 16))
            pos += 8 + nbytes + (0 if kind == MI_COMPRESSED else -nbytes % 8)
            kind_zip = kind == MI_COMPRESSED
            if kind_zip:
                head = zlib.decompressobj().decompress(head, MATRIX_HEADER_BYTES)
                kind, _, start = _v5_tag(head, 0, order)
                head = head[start:]
            if kind != MI_MATRIX:
                raise LabelFileError(f"{path}: a variable of MATLAB type {kind}, not a matrix")
            # The data a matrix can hold: its bytes in the file, times deflate's largest ratio.
            _check_v5_header(path, name, head, order, nbytes * (DEFLATE_MAX_RATIO if kind_zip else 1))


def _v5_tag(buf: bytes, pos: int, order: str) -> tuple[int, int, int]:
    """(type, byte count, offset of the data) of the element at `pos`, in the full or small format."""
    if pos + 8 > len(buf):
        raise ValueError(f"truncated element at byte {pos}")
    word = int.from_bytes(buf[pos : pos + 4], order)
    if word >> 16:  # small element: type and count in one word, data in the next 4 bytes
        return word & 0xFFFF, word >> 16, pos + 4
    return word, int.from_bytes(buf[pos + 4 : pos + 8], order), pos + 8


def _check_v5_header(path: Path, name: str, head: bytes, order: str, max_bytes: int) -> None:
    """A matrix's flags (uint32 x 2), dimensions (int32 x n), name (int8) and, for `name`, a real
    numeric class, the real part's data type, and data that fill the dimensions and fit in
    `max_bytes` (a damaged size would have scipy allocate what the header claims, up to 4 GB)."""
    parts, pos = [], 0
    for _ in range(4 if _v5_tag(head, 0, order)[:2] == (6, 8) else 0):
        kind, nbytes, start = _v5_tag(head, pos, order)
        parts.append((kind, nbytes, head[start : start + nbytes]))
        pos = start + nbytes + (-nbytes % 8 if start == pos + 8 else 4 - nbytes)
    if len(parts) < 4 or parts[1][0] != 5 or parts[1][1] % 4 or parts[2][0] != 1:
        raise LabelFileError(f"{path}: a matrix header is not laid out as MATLAB v5 lays it out")
    if parts[2][2].decode("latin-1") != name:
        return
    flags = int.from_bytes(parts[0][2][:4], order)
    if flags & 0xFF not in NUMERIC_CLASSES or flags & 0x0A00:  # 0x0800 complex, 0x0200 logical
        raise LabelFileError(f"{path}: {name} is not a real numeric matrix (array flags {flags:#x})")
    if parts[3][0] not in MI_BYTES:
        raise LabelFileError(f"{path}: {name} holds data of unknown MATLAB type {parts[3][0]}")
    dims = np.frombuffer(parts[1][2], dtype="<i4" if order == "little" else ">i4").astype(np.int64)
    data_bytes = int(np.prod(dims)) * MI_BYTES[parts[3][0]]
    if dims.min(initial=0) < 0 or parts[3][1] != data_bytes or data_bytes > max_bytes:
        raise LabelFileError(
            f"{path}: {name}'s header claims dimensions {dims.tolist()} ({data_bytes:,} bytes of data) "
            f"and a data element of {parts[3][1]:,} bytes; at most {max_bytes:,} fit in the file"
        )


def decode_depth(rgb: np.ndarray, path: Path) -> np.ndarray:
    """(H, W, 3) uint8 NYU PNG pixels -> (H, W) float32 depth mm = G * 256 + B (0 = missing)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadFrameError(
            f"depth image {path} is {rgb.dtype} with shape {rgb.shape}; expected NYU RGB-encoded "
            "depth (8-bit RGB, depth mm = G * 256 + B)"
        )
    return (rgb[..., 1].astype(np.uint16) << 8 | rgb[..., 2]).astype(np.float32)


def encode_depth(depth_mm: np.ndarray) -> np.ndarray:
    """(H, W) depth mm -> (H, W, 3) uint8 pixels as NYU stores them (R = 0, G = high byte, B = low
    byte), the inverse of `decode_depth` for whole mm (the app's examples, tests)."""
    d = np.rint(depth_mm).astype(np.uint16)
    return np.stack([np.zeros_like(d), d >> 8, d & 0xFF], axis=-1).astype(np.uint8)


def depth_file_name(camera: int, index: int) -> str:
    """File name of frame `index` (0-based) of a camera (1-based): depth_1_0000001.png for (1, 0)."""
    return f"depth_{camera}_{index + 1:07d}.png"


class NyuReader(DatasetReader):
    """Frames of one split and one camera; labels (N, 14, 3) uvd in memory, depth read per frame."""

    convention: Convention = NYU
    camera: Intrinsics = CAMERAS["nyu"]

    def __init__(self, root: Path, split: str, camera: int = DEFAULT_CAMERA) -> None:
        check_split("NYU", split)
        self.folder = Path(root) / split
        self.split = split
        self.camera_index = camera
        self.labels = read_joint_uvd(self.folder / "joint_data.mat", camera)[:, list(NYU_36_TO_14)]

    def frame_name(self, index: int) -> str:
        return f"{self.split}/{depth_file_name(self.camera_index, index)}"

    def read_depth(self, index: int) -> np.ndarray:
        path = self.folder / depth_file_name(self.camera_index, index)
        return decode_depth(read_image_array(path, (self.camera.width_px, self.camera.height_px)), path)


def open_reader(root: Path, split: str, *, camera: int | None, subject: str | None) -> NyuReader:
    refuse_options("NYU", "fixed train and test splits; --subject is MSRA's", subject=subject)
    return NyuReader(root, split, DEFAULT_CAMERA if camera is None else camera)
