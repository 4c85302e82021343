"""MSRA Hand Gesture 2015 dataset (Sun et al., CVPR 2015), as it ships.

Layout: `ROOT/P0..P8/<gesture>/joint.txt` and `ROOT/P<s>/<gesture>/<frame:06d>_depth.bin`.
- `joint.txt`: the frame count, then one line of 63 floats (21 joints x, y, z in mm) per frame,
  with y pointing up and z stored negative (the community negates z and lifts with
  v = cy - y * fy / z); in our camera frame (y down, z forward) a joint is (x, -y, -z).
- `*_depth.bin`: six little-endian uint32 (frame width, height, then the hand box left, top,
  right, bottom, half-open), then float32 depth mm of the box, row-major; the rest of the
  320x240 frame is missing (0).
MSRA is evaluated leave-one-subject-out: `test` is the held-out subject, `train` the other eight.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.data.raw import (
    BadFrameError,
    DatasetReader,
    LabelFileError,
    check_split,
    read_label_lines,
    refuse_options,
)
from crossingnets.files import UvdTextError, parse_uvd_line
from crossingnets.hand.conventions import MSRA, Convention

SUBJECTS = tuple(f"P{i}" for i in range(9))
HEADER_BYTES = 6 * 4
MSRA_TO_CAMERA_AXES = np.array([1.0, -1.0, -1.0])  # (x, y up, -z) -> (x, y down, z forward)


def read_depth_bin(path: Path, cam: Intrinsics) -> np.ndarray:
    """One `*_depth.bin` -> (H, W) float32 depth mm of the full frame, 0 outside the box."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadFrameError(f"depth file {path} not found") from None
    if len(raw) < HEADER_BYTES:
        raise BadFrameError(f"depth file {path} is truncated: {len(raw)} bytes, shorter than its header")
    width, height, left, top, right, bottom = (int(x) for x in np.frombuffer(raw, "<u4", count=6))
    if (width, height) != (cam.width_px, cam.height_px):
        raise BadFrameError(f"depth file {path} is {width}x{height}, expected {cam.width_px}x{cam.height_px}")
    if not (left < right <= width and top < bottom <= height):
        raise BadFrameError(
            f"depth file {path}: header box left={left} top={top} right={right} bottom={bottom} "
            f"is empty or outside the {width}x{height} frame"
        )
    expected = HEADER_BYTES + 4 * (right - left) * (bottom - top)
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise BadFrameError(f"depth file {path} is {state}: {len(raw)} bytes, expected {expected}")
    box = np.frombuffer(raw, "<f4", offset=HEADER_BYTES).reshape(bottom - top, right - left)
    if not np.isfinite(box).all() or (box < 0).any():
        raise BadFrameError(f"depth file {path} holds NaN, infinite or negative depth")
    depth = np.zeros((height, width), dtype=np.float32)
    depth[top:bottom, left:right] = box
    return depth


def encode_depth_bin(depth_mm: np.ndarray) -> bytes:
    """(H, W) depth mm -> `*_depth.bin` bytes, the inverse of `read_depth_bin`: the header (width,
    height, left, top, right, bottom) and the float32 depth of the box around the non-zero pixels."""
    rows, cols = np.nonzero(depth_mm)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    height, width = depth_mm.shape
    header = np.array([width, height, left, top, right, bottom], "<u4").tobytes()
    return header + depth_mm[top:bottom, left:right].astype("<f4").tobytes()


def read_joint_file(path: Path) -> list[np.ndarray | str]:
    """`joint.txt` -> per frame (21, 3) xyz mm in our camera frame, or that line's error message.

    A wrong frame count in the first line is an error for the whole file (LabelFileError); a line
    with the wrong number of values only spoils its own frame.
    """
    lines = read_label_lines(path)
    if not lines:
        raise LabelFileError(f"MSRA labels {path} are empty")
    try:
        count = int(lines[0][1])
    except ValueError:
        raise LabelFileError(
            f"{path} line {lines[0][0]}: expected the frame count, got {lines[0][1].strip()!r}"
        ) from None
    if count != len(lines) - 1:
        raise LabelFileError(f"{path} announces {count} frames but holds {len(lines) - 1} label lines")
    frames: list[np.ndarray | str] = []
    for number, line in lines[1:]:
        try:
            _, xyz = parse_uvd_line(line, MSRA.num_joints, f"{path} line {number}")
        except UvdTextError as err:
            frames.append(str(err))
            continue
        frames.append(xyz * MSRA_TO_CAMERA_AXES)
    return frames


def depth_file_name(index: int) -> str:
    return f"{index:06d}_depth.bin"


class MsraReader(DatasetReader):
    """Frames of the held-out subject (test) or of the other eight (train), gestures in name order."""

    convention: Convention = MSRA
    camera: Intrinsics = CAMERAS["msra"]
    labels_xyz = True

    def __init__(self, root: Path, split: str, subject: str) -> None:
        check_split("MSRA", split)
        if subject not in SUBJECTS:
            raise ValueError(f"MSRA subject must be one of {SUBJECTS}, got {subject!r}")
        self.root = Path(root)
        subjects = (subject,) if split == "test" else tuple(s for s in SUBJECTS if s != subject)
        self.frames: list[tuple[Path, int]] = []  # (gesture folder, frame index in it)
        self.labels: list[np.ndarray | str] = []
        for s in subjects:
            folder = self.root / s
            if not folder.is_dir():
                raise FileNotFoundError(f"MSRA subject folder {folder} not found")
            for gesture in sorted(p for p in folder.iterdir() if p.is_dir()):
                labels = read_joint_file(gesture / "joint.txt")
                self.frames.extend((gesture, i) for i in range(len(labels)))
                self.labels.extend(labels)

    def frame_name(self, index: int) -> str:
        gesture, i = self.frames[index]
        return str((gesture / depth_file_name(i)).relative_to(self.root))

    def read_depth(self, index: int) -> np.ndarray:
        gesture, i = self.frames[index]
        return read_depth_bin(gesture / depth_file_name(i), self.camera)


def open_reader(root: Path, split: str, *, camera: int | None, subject: str | None) -> MsraReader:
    refuse_options("MSRA", "one camera", camera=camera)
    if subject is None:
        raise ValueError(f"MSRA is evaluated leave-one-subject-out: give --subject, one of {SUBJECTS}")
    return MsraReader(root, split, subject)
