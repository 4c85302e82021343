"""ICVL Hand Posture dataset (Tang et al. 2014), as it ships.

Layout: `ROOT/Training/labels.txt` and `ROOT/Testing/test_seq_{1,2}.txt` (every `*.txt` of the
split's folder, in name order), lines `path u1 v1 d1 ... u16 v16 d16` (CRLF and blank lines
occur); the depth of `path` is the 320x240 16-bit PNG (mm) `ROOT/<split folder>/Depth/<path>`.

Label lines are parsed up front (small next to the depth); a malformed line is remembered and
raised as a BadFrameError for that frame only, so `--skip-bad` can leave it out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data.raw import (
    BadFrameError,
    DatasetReader,
    check_split,
    read_image_array,
    read_label_lines,
    refuse_options,
)
from crossingnets.files import UvdTextError, parse_uvd_line
from crossingnets.hand.conventions import ICVL, Convention

SPLIT_FOLDERS = {"train": "Training", "test": "Testing"}  # keys: raw.SPLITS


def decode_depth(pixels: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) uint16 PNG pixels -> (H, W) float32 depth mm (0 = missing)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise BadFrameError(
            f"depth image {path} is {pixels.dtype} with shape {pixels.shape}; expected a 16-bit "
            "single-channel PNG of depth in mm"
        )
    return pixels.astype(np.float32)


class IcvlReader(DatasetReader):
    """Frames of one split: (name, (16, 3) uvd) per label line, depth read per frame."""

    convention: Convention = ICVL
    camera: Intrinsics = CAMERAS["icvl"]

    def __init__(self, root: Path, split: str) -> None:
        check_split("ICVL", split)
        self.folder = Path(root) / SPLIT_FOLDERS[split]
        label_files = sorted(self.folder.glob("*.txt"))
        if not label_files:
            raise FileNotFoundError(f"no ICVL label file (*.txt) in {self.folder}")
        self.names: list[str] = []
        self.labels: list[np.ndarray | str] = []  # (16, 3) uvd, or the parse error of that line
        for label_file in label_files:
            for number, line in read_label_lines(label_file):
                where = f"{label_file} line {number}"
                try:
                    name, uvd = parse_uvd_line(line, ICVL.num_joints, where)
                    if name is None:
                        raise UvdTextError(f"{where}: no image path before the joints")
                except UvdTextError as err:
                    self.names.append(line.split()[0])  # iter_label_lines yields non-blank lines
                    self.labels.append(str(err))
                    continue
                self.names.append(name)
                self.labels.append(uvd)

    def frame_name(self, index: int) -> str:
        return f"{self.folder.name}/Depth/{self.names[index]}"

    def read_depth(self, index: int) -> np.ndarray:
        path = self.folder / "Depth" / self.names[index]
        return decode_depth(read_image_array(path, (self.camera.width_px, self.camera.height_px)), path)


def open_reader(root: Path, split: str, *, camera: int | None, subject: str | None) -> IcvlReader:
    refuse_options("ICVL", "one camera, fixed train and test splits", camera=camera, subject=subject)
    return IcvlReader(root, split)
