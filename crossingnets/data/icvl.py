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
from crossingnets.data.convert import SPLITS, BadFrameError, RawFrame, labelled_frame, read_image_array
from crossingnets.files import UvdTextError, iter_label_lines, parse_uvd_line
from crossingnets.hand.conventions import ICVL, Convention

SPLIT_FOLDERS = {"train": "Training", "test": "Testing"}


def decode_depth(pixels: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) uint16 PNG pixels -> (H, W) float32 depth mm (0 = missing)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise BadFrameError(
            f"depth image {path} is {pixels.dtype} with shape {pixels.shape}; expected a 16-bit "
            "single-channel PNG of depth in mm"
        )
    return pixels.astype(np.float32)


class IcvlReader:
    """Frames of one split: (name, (16, 3) uvd) per label line, depth read per frame."""

    convention: Convention = ICVL
    camera: Intrinsics = CAMERAS["icvl"]

    def __init__(self, root: Path, split: str) -> None:
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"ICVL split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(root) / SPLIT_FOLDERS[split]
        label_files = sorted(self.folder.glob("*.txt"))
        if not label_files:
            raise FileNotFoundError(f"no ICVL label file (*.txt) in {self.folder}")
        self.names: list[str] = []
        self.labels: list[np.ndarray | str] = []  # (16, 3) uvd, or the parse error of that line
        for label_file in label_files:
            for number, line in iter_label_lines(label_file):
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

    def __len__(self) -> int:
        return len(self.names)

    def frame_name(self, index: int) -> str:
        return f"{self.folder.name}/Depth/{self.names[index]}"

    def load(self, index: int) -> RawFrame:
        label = self.labels[index]
        if isinstance(label, str):
            raise BadFrameError(label)
        path = self.folder / "Depth" / self.names[index]
        depth = decode_depth(read_image_array(path), path)
        return labelled_frame(self.frame_name(index), depth, self.camera, joints_uvd=label)


def open_reader(root: Path, split: str, *, camera: int | None, subject: str | None) -> IcvlReader:
    if camera is not None or subject is not None:
        raise ValueError("--camera and --subject do not apply to ICVL (one camera, fixed splits)")
    return IcvlReader(root, split)
