"""Hand meshes: bounds, atomic export round trips, and agreement with the capsule renderer."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from crossingnets.camera import CAMERAS, Intrinsics
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.mesh import export_mesh, hand_mesh
from crossingnets.hand.render import render_depth

# A small hand-like set: palm, two fingers, a thumb pointing at the camera, a fist-sized sphere.
CAPS = Capsules(
    np.array([[[0, 0, 500], [-15, -40, 500], [15, -40, 505], [30, 0, 500], [-40, 20, 520]]], np.float32),
    np.array([[[0, -40, 500], [-20, -100, 495], [20, -95, 480], [40, 0, 460], [-40, 20, 520]]], np.float32),
    np.array([[28, 9, 8, 10, 15]], np.float32),
)


def capsule_bounds(caps: Capsules) -> tuple[np.ndarray, np.ndarray]:
    r = caps.radius_mm[0][:, None]
    ends = [caps.start_mm[0], caps.end_mm[0]]
    return np.min([e - r for e in ends], axis=(0, 1)), np.max([e + r for e in ends], axis=(0, 1))


def test_mesh_bounds_match_the_capsules() -> None:
    mesh = hand_mesh(CAPS)
    lo, hi = capsule_bounds(CAPS)
    np.testing.assert_allclose(mesh.bounds, [lo, hi], atol=0.05 * 28)  # inscribed polygons
    assert len(mesh.faces) > 0 and np.isfinite(mesh.vertices).all()


@pytest.mark.parametrize("suffix", [".ply", ".glb"])
def test_export_round_trip(tmp_path, suffix: str) -> None:
    mesh = hand_mesh(CAPS)
    path = export_mesh(mesh, tmp_path / f"hand{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"hand{suffix}"]  # no temp file left
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.vertices) == len(mesh.vertices) and len(loaded.faces) == len(mesh.faces)
    np.testing.assert_allclose(loaded.bounds, mesh.bounds, atol=1e-3)


def test_export_rejects_unknown_extension_and_missing_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown extension '\.obj'"):
        export_mesh(hand_mesh(CAPS), tmp_path / "hand.obj")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_mesh(hand_mesh(CAPS), tmp_path / "missing" / "hand.ply")
    assert list(tmp_path.iterdir()) == []


def ray_cast_depth(mesh: trimesh.Trimesh, cam: Intrinsics) -> np.ndarray:
    """Depth of the first mesh hit per pixel (embree), 0 on a miss."""
    u, v = np.meshgrid(np.arange(cam.width_px), np.arange(cam.height_px))
    dirs = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u, float)], -1).reshape(-1, 3)
    hits = trimesh.ray.ray_pyembree.RayMeshIntersector(mesh)
    loc, idx, _ = hits.intersects_location(np.zeros_like(dirs), dirs, multiple_hits=False)
    depth = np.zeros(len(dirs))
    depth[idx] = loc[:, 2]
    return depth.reshape(cam.height_px, cam.width_px)


@pytest.mark.parametrize("name", ["icvl", "nyu"])
def test_render_agrees_with_mesh_ray_casting(name: str) -> None:
    cam = CAMERAS[name]
    ours = render_depth(CAPS, cam)[0]
    theirs = ray_cast_depth(hand_mesh(CAPS, segments=32), cam)
    both = (ours > 0) & (theirs > 0)
    # Silhouettes differ only where the inscribed polygon cuts the rim.
    assert both.sum() > 0.97 * (ours > 0).sum() and both.sum() > 0.99 * (theirs > 0).sum()
    err = np.abs(ours - theirs)[both]
    assert np.median(err) < 0.1 and np.percentile(err, 99) < 3.0


def test_no_pixel_lost_near_the_image_corners() -> None:
    """Capsules near the corners of the wide ICVL view and close to the camera, where a sphere's
    image stretches most: every pixel where the inscribed mesh is hit must be a capsule hit too
    (the renderer's per-capsule outline must never cut its image)."""
    cam = CAMERAS["icvl"]
    rng = np.random.default_rng(0)
    n = 12
    corner = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]])[rng.integers(0, 4, n)]
    z = rng.uniform(120.0, 400.0, n)
    start = np.column_stack([corner * z[:, None] * rng.uniform(0.4, 0.75, (n, 2)), z])
    end = start + rng.normal(0.0, 40.0, (n, 3))
    end[:, 2] = np.maximum(end[:, 2], 100.0)
    caps = Capsules(start[None].astype(np.float32), end[None].astype(np.float32),
                    rng.uniform(10.0, 40.0, (1, n)).astype(np.float32))  # fmt: skip
    ours = render_depth(caps, cam)[0]
    theirs = ray_cast_depth(hand_mesh(caps, segments=32), cam)
    assert (theirs > 0).sum() > 2000
    assert not ((theirs > 0) & (ours == 0)).any()
    both = (ours > 0) & (theirs > 0)
    assert np.percentile(np.abs(ours - theirs)[both], 99) < 3.0
