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

from pathlib import Path

import numpy as np

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data.raw import BadFrameError, DatasetReader, check_split, read_image_array, refuse_options
from crossingnets.hand.conventions import NYU, NYU_36_TO_14, Convention

NUM_RAW_JOINTS = 36
DEFAULT_CAMERA = 1  # the frontal Kinect, the one every published NYU result uses


def read_joint_uvd(path: Path, camera: int = DEFAULT_CAMERA) -> np.ndarray:
    """`joint_uvd` of one camera (1-based) from joint_data.mat (v5 or v7.3) -> (N, 36, 3).

    Only that camera's slice is kept; with v7.3 only it is read from disk.
    """
    # Imported here: decoding one uploaded NYU depth PNG (depth_file.py) needs neither library.
    import h5py
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(f"NYU labels {path} not found")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if "joint_uvd" not in f:
                raise ValueError(f"{path} has no joint_uvd variable (holds {sorted(f)})")
            ds = f["joint_uvd"]  # MATLAB [camera, frame, joint, coord] seen reversed: (3, 36, N, C)
            _check_layout(path, ds.shape[::-1], camera)
            return np.ascontiguousarray(ds[..., camera - 1].T, dtype=np.float64)
    try:
        mat = scipy.io.loadmat(path, variable_names=["joint_uvd"])
    except (ValueError, OSError) as err:
        raise ValueError(f"{path} is not a MATLAB file ({err})") from None
    if "joint_uvd" not in mat:
        raise ValueError(f"{path} has no joint_uvd variable")
    _check_layout(path, mat["joint_uvd"].shape, camera)
    return np.asarray(mat["joint_uvd"][camera - 1], dtype=np.float64)


def _check_layout(path: Path, shape: tuple[int, ...], camera: int) -> None:
    if len(shape) != 4 or shape[2:] != (NUM_RAW_JOINTS, 3):
        raise ValueError(f"{path}: joint_uvd has shape {shape}, expected [camera, frame, 36, 3]")
    if not 1 <= camera <= shape[0]:
        raise ValueError(f"{path} holds cameras 1..{shape[0]}; camera {camera} requested")


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
        return decode_depth(read_image_array(path), path)


def open_reader(root: Path, split: str, *, camera: int | None, subject: str | None) -> NyuReader:
    refuse_options("NYU", "fixed train and test splits; --subject is MSRA's", subject=subject)
    return NyuReader(root, split, DEFAULT_CAMERA if camera is None else camera)
