"""Files: atomic writes, the community's uvd label text (one frame a line, `u v d` per joint),
and where the real data lies that tests and benchmarks read.

Shared by the dataset readers, `convert`, `evaluate` and the plots, so that none of them depends
on another's module for plain file handling.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SHARED_DATA_ENV = "CROSSINGNETS_SHARED_DATA"


def shared_data_dir() -> Path:
    """The real test labels and published predictions, which no checkout holds (read at call time):
    $CROSSINGNETS_SHARED_DATA, else `shared/data` beside the source checkout (`../shared/data`)."""
    env = os.environ.get(SHARED_DATA_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


class UvdTextError(ValueError):
    """A uvd text file (labels or predictions) is malformed; the message names file and line."""


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    An interrupted or failed write never leaves a partial file under the final name. The temporary
    name carries the writer's process id, so the half-written files of writers that were killed
    (SIGKILL runs no cleanup) are deleted by the next write of the same file.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    _remove_orphans(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.{os.getpid()}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o644)  # mkstemp makes 0600 files; outputs are meant to be shared
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """`data` as indented JSON with a final newline, written atomically (`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def _remove_orphans(path: Path) -> None:
    """Delete the temporaries `atomic_output` left beside `path` in processes that no longer run."""
    for tmp in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"):
        pid = tmp.name[len(path.stem) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_uvd_line(line: str, num_joints: int | None, where: str) -> tuple[str | None, np.ndarray]:
    """One label line -> (frame name or None, (J, 3) uvd).

    `where` ("file.txt line 12") prefixes every error. The line is `[name] u1 v1 d1 ... uJ vJ dJ`;
    values must be finite and their count 3 x num_joints (any multiple of 3 if num_joints is None).
    """
    tokens = line.split()
    name = None
    if tokens and not _is_number(tokens[0]):
        name, tokens = tokens[0], tokens[1:]
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError as err:
        raise UvdTextError(f"{where}: not a number ({err})") from None
    expected = 3 * num_joints if num_joints is not None else None
    if values.size == 0 or values.size % 3 or (expected is not None and values.size != expected):
        want = f"{expected} (3 x {num_joints} joints)" if expected else "a multiple of 3"
        raise UvdTextError(f"{where}: {values.size} values, expected {want}")
    if not np.isfinite(values).all():
        raise UvdTextError(f"{where}: NaN or infinite value")
    return name, values.reshape(-1, 3)


def iter_label_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each non-blank line; CRLF, CR and LF all end a line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found")
    with open(path, encoding="utf-8", newline=None) as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line


@dataclass(frozen=True)
class UvdText:
    names: tuple[str, ...] | None  # frame names where the lines carry them
    joints_uvd: np.ndarray  # (N, J, 3) pixels, pixels, mm


def read_uvd_text(path: str | os.PathLike, num_joints: int | None = None) -> UvdText:
    """Read a community uvd file: all lines must agree on the joint count and on naming."""
    names: list[str | None] = []
    frames: list[np.ndarray] = []
    for number, line in iter_label_lines(path):
        name, uvd = parse_uvd_line(line, num_joints, f"{path} line {number}")
        if frames and (uvd.shape != frames[0].shape or (name is None) != (names[0] is None)):
            raise UvdTextError(
                f"{path} line {number}: {len(uvd)} joints{' with a name' if name else ''}, but the "
                f"first line has {len(frames[0])}{' with a name' if names[0] else ''}"
            )
        names.append(name)
        frames.append(uvd)
    if not frames:
        raise UvdTextError(f"{path} holds no frames")
    named = tuple(n for n in names if n is not None)
    return UvdText(names=named or None, joints_uvd=np.stack(frames))


def format_uvd_text(joints_uvd: np.ndarray) -> str:
    """(N, J, 3) uvd -> the community's text: one frame a line, `u v d` per joint."""
    joints_uvd = np.asarray(joints_uvd, dtype=np.float64)
    if joints_uvd.ndim != 3 or joints_uvd.shape[-1] != 3:
        raise ValueError(f"joints_uvd must have shape (N, J, 3), got {joints_uvd.shape}")
    if not np.isfinite(joints_uvd).all():
        raise ValueError("joints_uvd has NaN or infinite values")
    flat = joints_uvd.reshape(len(joints_uvd), -1)
    return "".join(" ".join(f"{x:.4f}" for x in row) + "\n" for row in flat)


def write_uvd_text(path: str | os.PathLike, joints_uvd: np.ndarray) -> Path:
    """Write (N, J, 3) uvd in the community's format, atomically."""
    text = format_uvd_text(joints_uvd)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
