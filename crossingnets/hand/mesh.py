"""The posed hand as a triangle mesh, for people (.glb / .ply viewers, the app) and for checking the
renderer against a general-purpose ray caster."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import trimesh

from crossingnets.hand.capsules import Capsules

MESH_FORMATS = (".glb", ".ply")


def hand_mesh(capsules: Capsules, b: int = 0, segments: int = 16) -> trimesh.Trimesh:
    """Frame `b` of a capsule batch as one mesh (the capsules concatenated, overlaps kept), camera
    frame, mm. Vertices lie on the capsule surfaces, so the mesh sits inside them by at most
    radius * (1 - cos(pi / segments)) (2 % of the radius at 16 segments)."""
    start, end, radius = (np.asarray(a, dtype=np.float64) for a in capsules)
    if not -start.shape[0] <= b < start.shape[0]:
        raise IndexError(f"frame {b} out of range for a batch of {start.shape[0]}")
    parts = [_capsule_mesh(a, e, r, segments) for a, e, r in zip(start[b], end[b], radius[b], strict=True)]
    if not parts:
        raise ValueError(f"frame {b} has no capsules")
    return trimesh.util.concatenate(parts)


def _capsule_mesh(start: np.ndarray, end: np.ndarray, radius: float, segments: int) -> trimesh.Trimesh:
    """One capsule: trimesh builds it along +z centred at the origin; rotate and move it."""
    axis = end - start
    length = float(np.linalg.norm(axis))
    pose = np.eye(4)
    if length > 0:
        pose = trimesh.geometry.align_vectors([0.0, 0.0, 1.0], axis / length)
    pose[:3, 3] = 0.5 * (start + end)
    return trimesh.creation.capsule(height=length, radius=radius, count=[segments, segments], transform=pose)


def export_mesh(mesh: trimesh.Trimesh, path: str | os.PathLike) -> Path:
    """Write `mesh` as .glb or .ply (chosen by the extension), atomically: a temporary file beside
    the target, renamed over it once complete, so a crash never leaves a half-written mesh."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise ValueError(
            f"cannot write mesh {path}: unknown extension {path.suffix!r}; expected one of {MESH_FORMATS}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write mesh {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            mesh.export(f, file_type=suffix[1:])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
