"""A second, deliberately different depth renderer: held-out frames for "did the model learn hands
or our renderer?" (issue 11). Never train on its output.

    OMP_NUM_THREADS=1 python benchmarks/second_renderer.py --out-dir bench/ [-n 1000] [--sheet S.png]

Shares nothing with crossingnets/hand/ (capsules, render, sampler, sensor, mesh): real poses from
NYU's test labels (14 joints) with random scale, in-plane roll and distance; a hand mesh built
along those joints from tapered elliptic/circular frustums, joint spheres, fingertip ellipsoids,
convex hulls of sphere clusters for palm and thenar, and a forearm of random length and girth; ray
cast with trimesh + embree; its own Kinect-like sensor (disparity noise and 1/8 px disparity steps,
projector shadows, ragged and flying silhouette pixels, holes); an optional tilted wall behind.
Only the project's preprocessing (centre detection, 300 mm / 64 px crop, as benchmarks/synth.py)
and store writer are reused, so the frames reach the model by the one path real frames take.

The store has one centre field, so one rendering pass writes two stores with the same frames:
`<prefix>_detect.h5` (the centre `preprocess` detects from the depth) and `<prefix>_labels.h5`
(the mean of the 14 joints in xyz, projected: `convert --center labels`'s oracle centre). Ground
truth is the joints of the posed labels in the camera frame; they sit at the mesh's joint centres,
so the joint definitions agree with NYU's by construction. Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageDraw
from scipy import ndimage
from tqdm import tqdm
from trimesh.ray.ray_pyembree import RayMeshIntersector

from crossingnets.camera import Intrinsics, get_camera, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.convert import labels_center_uvd
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess, uvd_to_crop
from crossingnets.data.raw import RawFrame
from crossingnets.data.store import StoreWriter
from crossingnets.draw import contact_sheet, draw_skeleton
from crossingnets.files import read_uvd_text, shared_data_dir
from crossingnets.hand.conventions import NYU

RENDERER_VERSION = 1  # bump when a change alters what a seed produces
CENTERS = ("detect", "labels")

# NYU joint rows (crossingnets.hand.conventions.NYU order).
TIP = {"pinky": 0, "ring": 2, "middle": 4, "index": 6, "thumb": 8}
PIP = {"pinky": 1, "ring": 3, "middle": 5, "index": 7}  # NYU's finger "root" is the PIP
THUMB_ROOT2, THUMB_ROOT1, WRIST2, WRIST1, PALM = 9, 10, 11, 12, 13

# Palm-frame template, mm, as (ulnar, distal, palmar) from NYU's palm joint, for a palm whose palm
# joint lies 65.7 mm from the wrist points' midpoint (the median over NYU's test labels; scaled
# per frame). The MCPs are not labelled: put where the PIPs of extended NYU fingers (the 90th
# percentile of their distal offset) sit one proximal phalanx (32-45 mm) away.
PALM_REF_MM = 65.7
MCP = {"index": (-26, 31, 0), "middle": (-6, 35, 0), "ring": (12, 31, 0), "pinky": (28, 21, 0)}
THUMB_CMC = (-18, -48, 8)
PALM_BLOBS = (  # (ulnar, distal, palmar, radius): the palm as the convex hull of these spheres
    (-15, -68, 0, 15), (15, -68, 0, 14),  # wrist, around NYU's two wrist points (29 mm apart)
    (-26, 31, 0, 11), (-6, 35, 0, 11.5), (12, 31, 0, 10.5), (28, 21, 0, 9.5),  # knuckles
    (0, -10, 3, 14), (26, -25, 2, 12), (-22, -20, 2, 12),  # palm centre, hypothenar, radial edge
)  # fmt: skip
THENAR_BLOBS = ((-16, -18, 4, 12), (-22, 8, 2, 9))  # plus the CMC and the thumb's root 1
# Radii, mm: (MCP, PIP, tip) for fingers; thicker, finger by finger, than the tip.
FINGER_RADII = {"index": (10.0, 8.8, 7.4), "middle": (10.4, 9.2, 7.6), "ring": (9.6, 8.4, 7.0),
                "pinky": (8.4, 7.2, 6.2)}  # fmt: skip
THUMB_RADII = (13.0, 11.0, 9.8, 9.0)  # CMC, root 1, root 2, tip


@dataclass(frozen=True)
class SecondRendererConfig:
    """Random ranges are (low, high) of a uniform draw per frame."""

    hand_scale: tuple[float, float] = (0.85, 1.15)  # joints scaled about the palm joint
    thickness: tuple[float, float] = (0.85, 1.2)  # every radius of the hand
    finger_thickness: tuple[float, float] = (0.9, 1.12)  # per finger, on top of `thickness`
    palm_width: tuple[float, float] = (0.9, 1.1)  # ulnar-radial stretch of palm and knuckles
    template_jitter_mm: float = 2.0  # sd of each MCP / CMC template point
    roll_deg: float = 40.0  # in-plane rotation about the optical axis through the palm, +-
    distance_jitter_mm: float = 150.0  # palm depth moved along its viewing ray, +-
    palm_depth_mm: tuple[float, float] = (550.0, 1250.0)  # clamp after jitter
    edge_margin_px: float = 12.0  # every joint projects at least this far inside the frame
    forearm_length_mm: tuple[float, float] = (60.0, 320.0)
    forearm_girth: tuple[float, float] = (0.85, 1.2)  # its cross-section, relative to 56 x 38 mm
    forearm_bend_deg: tuple[float, float] = (25.0, 15.0)  # wrist flexion, deviation: +- each
    wall_prob: float = 0.65  # else nothing behind the hand
    wall_gap_mm: tuple[float, float] = (60.0, 600.0)  # wall behind the hand's farthest point
    wall_tilt_deg: float = 35.0
    range_mm: tuple[float, float] = (450.0, 4000.0)  # Kinect v1 measures nothing outside
    baseline_mm: float = 75.0  # IR projector to camera (Kinect v1); shadows and disparity
    disparity_noise_px: tuple[float, float] = (0.04, 0.1)  # Gaussian sd: depth sd ~ z^2
    disparity_step_px: float = 0.125  # Kinect v1 reports disparity in 1/8 px steps
    edge_jump_mm: float = 20.0  # a neighbour this much farther makes a silhouette pixel
    edge_drop: tuple[float, float] = (0.2, 0.7)  # probability a silhouette pixel is lost
    flying_prob: float = 0.15  # a kept silhouette pixel mixes foreground and background depth
    holes_mean: float = 1.5  # Poisson mean of hole blobs on the hand
    hole_radius_px: tuple[float, float] = (1.5, 5.0)
    speckle: float = 0.004  # fraction of isolated missing hand pixels


@dataclass(frozen=True)
class SecondFrame:
    depth_mm: np.ndarray  # (H, W) float32 sensor-like frame, 0 = missing
    hand_mm: np.ndarray  # (H, W) float32 noise-free hand + forearm alone, 0 = none
    joints_xyz: np.ndarray  # (14, 3) float32 camera mm, NYU order
    wall: bool


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """(3, 3) rotation about a unit axis (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * k @ k


# ---------------------------------------------------------------------------------------------
# Poses


def load_nyu_poses(path: str | os.PathLike, cam: Intrinsics) -> np.ndarray:
    """NYU label text (one frame a line, 14 x `u v d`) -> (N, 14, 3) camera-frame mm."""
    return uvd_to_xyz(read_uvd_text(path, NYU.num_joints).joints_uvd, cam)


def jitter_pose(
    joints_xyz: np.ndarray, rng: np.random.Generator, cam: Intrinsics, cfg: SecondRendererConfig
) -> np.ndarray:
    """(14, 3) mm -> a new hand: scaled about the palm, rolled about the optical axis through the
    palm, moved along the palm's viewing ray, then shifted sideways until every joint is in view."""
    palm = joints_xyz[PALM]
    roll = _rotation(np.array([0.0, 0.0, 1.0]), np.deg2rad(rng.uniform(-cfg.roll_deg, cfg.roll_deg)))
    local = _u(rng, cfg.hand_scale) * (joints_xyz - palm) @ roll.T
    depth = np.clip(palm[2] + rng.uniform(-1, 1) * cfg.distance_jitter_mm, *cfg.palm_depth_mm)
    out = local + palm * (depth / palm[2])
    uv = xyz_to_uvd(out, cam)[:, :2]
    lo = np.array([cfg.edge_margin_px] * 2)
    hi = np.array([cam.width_px - 1, cam.height_px - 1]) - cfg.edge_margin_px
    shift_px = np.maximum(lo - uv.min(0), 0) - np.maximum(uv.max(0) - hi, 0)
    out[:, :2] += shift_px * depth / np.array([cam.fx, cam.fy])
    return out


# ---------------------------------------------------------------------------------------------
# The mesh


def _basis(axis: np.ndarray, hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to `axis`, the first as close to `hint` as possible."""
    a = _unit(axis)
    h = hint - a * (hint @ a)
    if np.linalg.norm(h) < 1e-6:
        h = np.eye(3)[np.argmin(np.abs(a))]
        h = h - a * (h @ a)
    e1 = _unit(h)
    return e1, np.cross(a, e1)


def _frustum(a, b, ra, rb, hint, segments: int = 16) -> trimesh.Trimesh:
    """Closed tapered tube from `a` to `b`; radii are scalars (circle) or (along hint, across)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    e1, e2 = _basis(b - a, hint)
    t = np.linspace(0, 2 * np.pi, segments, endpoint=False)[:, None]
    ra, rb = np.broadcast_to(ra, 2), np.broadcast_to(rb, 2)
    rings = [c + r[0] * np.cos(t) * e1 + r[1] * np.sin(t) * e2 for c, r in ((a, ra), (b, rb))]
    i = np.arange(segments)
    j = (i + 1) % segments
    n = segments
    faces = np.concatenate([
        np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1),  # side
        np.stack([np.full(n, 2 * n), j, i], 1), np.stack([np.full(n, 2 * n + 1), n + i, n + j], 1),  # caps
    ])  # fmt: skip
    return trimesh.Trimesh(np.vstack([*rings, a, b]), faces, process=False)


_SPHERE = trimesh.creation.icosphere(subdivisions=2)
_SPHERE_COARSE = trimesh.creation.icosphere(subdivisions=1)


def _ellipsoid(centre, radii, axes) -> trimesh.Trimesh:
    """Ellipsoid with semi-axes `radii` along the rows of `axes` (3, 3)."""
    v = (_SPHERE.vertices * np.asarray(radii)) @ np.asarray(axes) + centre
    return trimesh.Trimesh(v, _SPHERE.faces, process=False)


def _sphere_hull(centres: np.ndarray, radii: np.ndarray) -> trimesh.Trimesh:
    """Convex hull of spheres: a rounded slab or blob through the given points."""
    pts = (_SPHERE_COARSE.vertices[None] * radii[:, None, None] + centres[:, None]).reshape(-1, 3)
    return trimesh.convex.convex_hull(pts)


def build_hand_mesh(
    joints_xyz: np.ndarray, rng: np.random.Generator, cfg: SecondRendererConfig
) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """(14, 3) camera mm -> (hand mesh, forearm mesh), parts overlapping, camera frame.

    The palm frame comes from the rigid palm labels: distal = wrist midpoint -> palm joint, ulnar
    = wrist1 -> wrist2, palmar = distal x ulnar (the side NYU's fingers flex towards).
    """
    j = np.asarray(joints_xyz, dtype=np.float64)
    wrist = 0.5 * (j[WRIST1] + j[WRIST2])
    distal = _unit(j[PALM] - wrist)
    ulnar = _unit((j[WRIST2] - j[WRIST1]) - distal * ((j[WRIST2] - j[WRIST1]) @ distal))
    palmar = np.cross(distal, ulnar)
    size = np.linalg.norm(j[PALM] - wrist) / PALM_REF_MM
    width = _u(rng, cfg.palm_width)
    thick = _u(rng, cfg.thickness) * size

    def at(p, jitter: float = 0.0) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)[..., :3] * [width, 1.0, 1.0] * size
        p = p + jitter * rng.standard_normal(p.shape)
        return j[PALM] + p @ np.stack([ulnar, distal, palmar])

    parts = []
    blobs = np.asarray(PALM_BLOBS, dtype=np.float64)
    parts.append(_sphere_hull(at(blobs), blobs[:, 3] * thick))
    for finger, (r_mcp, r_pip, r_tip) in FINGER_RADII.items():
        k = thick * _u(rng, cfg.finger_thickness)
        r_mcp, r_pip, r_tip = r_mcp * k, r_pip * k, r_tip * k
        mcp, pip, tip = at(MCP[finger], cfg.template_jitter_mm), j[PIP[finger]], j[TIP[finger]]
        dip = pip + 0.55 * (tip - pip)  # unlabelled: a small bulge where the DIP would be
        r_dip = 0.5 * (r_pip + r_tip)
        parts += [
            _frustum(mcp, pip, (r_mcp, 0.9 * r_mcp), r_pip, ulnar),
            _frustum(pip, tip, r_pip * 0.95, r_tip * 0.9, ulnar),
            _ellipsoid(mcp, [r_mcp * 1.05] * 3, np.eye(3)),
            _ellipsoid(pip, [r_pip * 1.08] * 3, np.eye(3)),
            _ellipsoid(dip, [r_dip * 1.04] * 3, np.eye(3)),
            _tip(tip, tip - pip, ulnar, r_tip),
        ]
    k = thick * _u(rng, cfg.finger_thickness)
    r_cmc, r_1, r_2, r_tip = (r * k for r in THUMB_RADII)
    cmc = at(THUMB_CMC, cfg.template_jitter_mm)
    t1, t2, tt = j[THUMB_ROOT1], j[THUMB_ROOT2], j[TIP["thumb"]]
    thenar = np.asarray(THENAR_BLOBS, dtype=np.float64)
    parts += [
        _sphere_hull(np.vstack([at(thenar), cmc, t1]), np.r_[thenar[:, 3] * thick, r_cmc, 0.9 * r_1]),
        _frustum(cmc, t1, r_cmc, r_1, palmar),
        _frustum(t1, t2, r_1 * 0.95, r_2, palmar),
        _frustum(t2, tt, r_2 * 0.95, r_tip * 0.9, palmar),
        _ellipsoid(t1, [r_1] * 3, np.eye(3)),
        _ellipsoid(t2, [r_2 * 1.04] * 3, np.eye(3)),
        _tip(tt, tt - t2, palmar, r_tip),
    ]
    return trimesh.util.concatenate(parts), _forearm(wrist, distal, ulnar, palmar, size, rng, cfg)


def _tip(centre, direction, hint, r) -> trimesh.Trimesh:
    """Fingertip: an ellipsoid longer along the finger and flatter nail-to-pad than across."""
    e1, e2 = _basis(direction, hint)
    return _ellipsoid(centre, [r, 0.85 * r, 1.15 * r], np.stack([e1, e2, _unit(direction)]))


def _forearm(wrist, distal, ulnar, palmar, size, rng, cfg: SecondRendererConfig) -> trimesh.Trimesh:
    """An elliptic frustum (wide across the wrist, flatter palm-to-back, thicker towards the
    elbow) leaving the wrist backwards, bent by random wrist flexion and deviation."""
    flex, dev = (np.deg2rad(rng.uniform(-b, b)) for b in cfg.forearm_bend_deg)
    axis = _rotation(palmar, dev) @ _rotation(ulnar, flex) @ -distal
    length = _u(rng, cfg.forearm_length_mm) * size
    girth = _u(rng, cfg.forearm_girth) * size
    swell = rng.uniform(1.05, 1.35)
    start = wrist + 4.0 * size * distal
    return _frustum(start, start + length * axis, (28 * girth, 19 * girth),
                    (28 * girth * swell, 19 * girth * swell * 1.1), ulnar, segments=24)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Ray casting and the scene


def _rays(cam: Intrinsics, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Viewing rays through pixel centres (integer u, v), z component 1."""
    return np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u, dtype=float)], -1)


def cast_depth(mesh: trimesh.Trimesh, cam: Intrinsics) -> np.ndarray:
    """(H, W) float32 z (mm) of the first surface hit per pixel, 0 where none; rays are cast only
    inside the mesh's projected bounding box."""
    depth = np.zeros((cam.height_px, cam.width_px), np.float32)
    verts = mesh.vertices[mesh.vertices[:, 2] > 1.0]
    if len(verts) == 0:
        return depth
    uv = xyz_to_uvd(verts, cam)[:, :2]
    u0, v0 = np.maximum(np.floor(uv.min(0)).astype(int), 0)
    u1 = min(int(np.ceil(uv[:, 0].max())), cam.width_px - 1)
    v1 = min(int(np.ceil(uv[:, 1].max())), cam.height_px - 1)
    if u0 > u1 or v0 > v1:
        return depth
    u, v = np.meshgrid(np.arange(u0, u1 + 1), np.arange(v0, v1 + 1))
    rays = _rays(cam, u.ravel(), v.ravel())
    loc, idx, _ = RayMeshIntersector(mesh).intersects_location(np.zeros_like(rays), rays, multiple_hits=False)
    depth[v.ravel()[idx], u.ravel()[idx]] = loc[:, 2]
    return depth


def wall_depth(
    hand_vertices: np.ndarray, rng: np.random.Generator, cam: Intrinsics, cfg: SecondRendererConfig
) -> np.ndarray:
    """(H, W) depth of a tilted plane `wall_gap_mm` behind the hand's farthest point (along its
    normal, so it never cuts the hand; the forearm may pass through it), pushed back until no
    pixel of it is nearer than the hand's farthest point plus the smallest gap: a wall that comes
    nearer than the hand at the frame's edge is a different benchmark (finding the hand at all)."""
    axis = _unit(np.r_[rng.standard_normal(2), 0.0])
    normal = _rotation(axis, np.deg2rad(rng.uniform(0, cfg.wall_tilt_deg))) @ np.array([0.0, 0.0, 1.0])
    offset = float((hand_vertices @ normal).max()) + _u(rng, cfg.wall_gap_mm)
    u, v = np.meshgrid(np.arange(cam.width_px), np.arange(cam.height_px))
    denom = _rays(cam, u, v) @ normal
    nearest = offset / denom.max()  # denom > 0: the tilt is below 90 deg
    floor = float(hand_vertices[:, 2].max()) + cfg.wall_gap_mm[0]
    offset *= max(1.0, floor / nearest)
    return (offset / denom).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The sensor


def sensor(
    depth: np.ndarray, hand: np.ndarray, rng: np.random.Generator, cam: Intrinsics, cfg: SecondRendererConfig
) -> np.ndarray:
    """Clean (H, W) depth (`hand`: (H, W) bool, where it shows the hand) -> Kinect-like: range limits, projector shadows, ragged and flying
    silhouettes, holes, then disparity noise and 1/8 px disparity steps (depth steps and noise both
    grow with z^2, ~1.6 mm steps at 750 mm as in NYU's frames)."""
    fb = cam.fx * cfg.baseline_mm  # disparity (px) = fb / z
    lo, hi = cfg.range_mm
    z = np.where((depth >= lo) & (depth <= hi), depth, 0.0).astype(np.float64)
    valid = z > 0
    # Projector shadows: the projector sits to one side, so background just beside a nearer edge
    # gets no pattern. In NYU's frames the band lies on the right of the hand: pixel u is dark when
    # some u' < u is nearer by more than u - u' px of disparity, i.e. when the running maximum of
    # disparity(u') + u' along the row exceeds disparity(u) + u.
    with np.errstate(divide="ignore"):
        disp = np.where(valid, fb / np.where(valid, z, 1.0), 0.0)
    cols = np.arange(z.shape[1], dtype=np.float64)
    reach = np.maximum.accumulate(disp + cols, axis=1)
    shadow = valid[:, 1:] & (reach[:, :-1] > disp[:, 1:] + cols[1:] + 0.5)
    shadow = np.pad(shadow, ((0, 0), (1, 0)))
    z[shadow] = 0.0
    valid = z > 0
    # Silhouette pixels: a 4-neighbour missing or more than edge_jump_mm farther.
    pad = np.pad(z, 1)
    neigh = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]])
    edge = valid & ((neigh == 0) | (neigh - z > cfg.edge_jump_mm)).any(0)
    drop = edge & (rng.random(z.shape) < _u(rng, cfg.edge_drop))
    drop |= ndimage.binary_dilation(drop) & valid & (rng.random(z.shape) < 0.3)  # ragged, not a ring
    far = np.where(neigh - z > cfg.edge_jump_mm, neigh, 0).max(0)
    flying = edge & ~drop & (far > 0) & (rng.random(z.shape) < cfg.flying_prob)
    z[flying] += rng.random(int(flying.sum())) * (far[flying] - z[flying])
    z[drop] = 0.0
    hand = np.flatnonzero((z > 0).ravel() & hand.ravel())  # holes and speckle on the hand only
    if hand.size:
        for c in rng.choice(hand, rng.poisson(cfg.holes_mean)):
            r, aspect = _u(rng, cfg.hole_radius_px), rng.uniform(0.6, 1.6)
            cv, cu = divmod(int(c), z.shape[1])
            v0, u0 = max(cv - 8, 0), max(cu - 8, 0)
            v1, u1 = min(cv + 9, z.shape[0]), min(cu + 9, z.shape[1])
            vv, uu = np.ogrid[v0:v1, u0:u1]
            win = z[v0:v1, u0:u1]  # a view: holes land in z
            win[(vv - cv) ** 2 + ((uu - cu) / aspect) ** 2 <= r * r] = 0.0
        z.ravel()[hand[rng.random(hand.size) < cfg.speckle]] = 0.0
    valid = z > 0
    disp = fb / np.where(valid, z, 1.0) + _u(rng, cfg.disparity_noise_px) * rng.standard_normal(z.shape)
    step = cfg.disparity_step_px
    disp = np.maximum(np.round(disp / step) * step, step)
    out = np.where(valid, fb / disp, 0.0)
    out[(out < lo) | (out > hi)] = 0.0
    return out.astype(np.float32)


def render_frame(
    joints_xyz: np.ndarray, rng: np.random.Generator, cam: Intrinsics, cfg: SecondRendererConfig
) -> SecondFrame:
    """One labelled NYU pose (14, 3) mm -> a jittered hand as a sensor-like frame with its joints."""
    joints = jitter_pose(np.asarray(joints_xyz, dtype=np.float64), rng, cam, cfg)
    hand, forearm = build_hand_mesh(joints, rng, cfg)
    clean = cast_depth(trimesh.util.concatenate([hand, forearm]), cam)
    scene = clean
    wall = bool(rng.random() < cfg.wall_prob)
    if wall:
        back = wall_depth(hand.vertices, rng, cam, cfg)
        scene = np.where((clean > 0) & ((clean < back) | (back == 0)), clean, back)
    depth = sensor(scene, (clean > 0) & (scene == clean), rng, cam, cfg)
    return SecondFrame(depth, clean, joints.astype(np.float32), wall)


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """Each frame's own stream: frame i is the same whatever n or the order of rendering."""
    return np.random.default_rng([RENDERER_VERSION, seed, index])


# ---------------------------------------------------------------------------------------------
# Stores and the sheet


def to_crops(frame: SecondFrame, cam: Intrinsics, crop: CropConfig) -> dict[str, dict] | None:
    """The frame through the shared preprocessing, once per centre; None if either finds no hand
    (both stores then drop it, so they hold the same frames)."""
    uvd = xyz_to_uvd(frame.joints_xyz, cam)
    raw = RawFrame(name="", depth_mm=frame.depth_mm, joints_uvd=uvd, joints_xyz_mm=frame.joints_xyz)
    out = {}
    for center in CENTERS:
        given = labels_center_uvd(raw, cam) if center == "labels" else None
        try:
            c = preprocess(frame.depth_mm, cam, crop, given)
        except NoHandError:
            return None
        out[center] = {"depth": c.depth[None], "joints_xyz": frame.joints_xyz, "joints_uvd": uvd,
                       "com_uvd": c.com_uvd}  # fmt: skip
    return out


def full_frame_image(frame: SecondFrame, cam: Intrinsics, width: int = 256) -> Image.Image:
    """A full frame, near bright, missing black, with the joints as dots."""
    d = frame.depth_mm
    img = np.zeros(d.shape, np.uint8)
    valid = d > 0
    if valid.any():
        lo, hi = np.percentile(d[valid], [0.5, 99.5])
        img[valid] = (255 - 205 * np.clip((d[valid] - lo) / max(hi - lo, 1.0), 0, 1)).astype(np.uint8)
    im = Image.fromarray(img).convert("RGB")
    scale = width / d.shape[1]
    im = im.resize((width, round(d.shape[0] * scale)), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    for u, v, _ in xyz_to_uvd(frame.joints_xyz, cam) * [scale, scale, 1]:
        draw.ellipse([u - 1.5, v - 1.5, u + 1.5, v + 1.5], fill="#e6194b")
    return im


def save_sheet(
    path: Path, crops: list[dict], frames: list[SecondFrame], cam: Intrinsics, crop: CropConfig
) -> None:
    """16 detected-centre crops with skeletons (2 rows), then 4 full frames (1 row)."""
    tiles = [
        draw_skeleton(
            c["depth"][0],
            uvd_to_crop(c["joints_uvd"], c["com_uvd"], cam, crop),
            NYU,
            scale=max(1, 128 // crop.crop_px),
        )  # fmt: skip
        for c in crops[:16]
    ]
    top = contact_sheet(tiles, columns=8)
    row = contact_sheet([full_frame_image(f, cam, top.width // 4) for f in frames[:4]], columns=4)
    sheet = Image.new("RGB", (top.width, top.height + row.height), "white")
    sheet.paste(top, (0, 0))
    sheet.paste(row, (0, top.height))
    sheet.save(path)


def generate(
    poses_xyz: np.ndarray,
    out_dir: Path,
    prefix: str,
    seed: int,
    cam: Intrinsics,
    crop: CropConfig,
    cfg: SecondRendererConfig = SecondRendererConfig(),
    attrs: dict | None = None,
    overwrite: bool = False,
    sheet: Path | None = None,
    progress: bool = True,
) -> dict:
    """Render every pose of (N, 14, 3) once and write `<prefix>_detect.h5` and `<prefix>_labels.h5`
    (same frames, different crop centres). Returns counts and centre statistics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {c: out_dir / f"{prefix}_{c}.h5" for c in CENTERS}
    base = {"source": "second_renderer", "generator_version": RENDERER_VERSION, "seed": int(seed),
            "generator": dataclasses.asdict(cfg), **(attrs or {})}  # fmt: skip
    writers: dict[str, StoreWriter] = {}
    dropped, walls, gap_mm, shown, shown_frames = 0, 0, [], [], []
    try:
        for c in CENTERS:
            writers[c] = StoreWriter(paths[c], NYU, cam, crop, {**base, "center": c}, overwrite=overwrite)
        for i, pose in enumerate(tqdm(poses_xyz, desc="second renderer", unit="frame", disable=not progress)):
            frame = render_frame(pose, frame_rng(seed, i), cam, cfg)
            crops = to_crops(frame, cam, crop)
            if crops is None:
                dropped += 1
                continue
            for c in CENTERS:
                writers[c].append(**{k: np.asarray(v)[None] for k, v in crops[c].items()})
            walls += frame.wall
            com = {c: uvd_to_xyz(crops[c]["com_uvd"], cam) for c in CENTERS}
            gap_mm.append(float(np.linalg.norm(com["detect"] - com["labels"])))
            if sheet is not None and len(shown) < 16:
                shown.append(crops["detect"])
                shown_frames += [frame] if len(shown_frames) < 4 else []
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()
    if sheet is not None and shown:
        save_sheet(Path(sheet), shown, shown_frames, cam, crop)
    gap = np.asarray(gap_mm)
    return {
        "stores": {c: str(p) for c, p in paths.items()},
        "frames": len(gap),
        "dropped_no_hand": dropped,
        "with_wall": walls,
        "detect_to_labels_centre_mm": {"mean": float(gap.mean()), "p90": float(np.percentile(gap, 90))}
        if gap.size
        else None,
    }


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1000, help="frames (NYU test poses drawn without replacement)")
    p.add_argument("--seed", type=int, default=2001, help="pose draw and per-frame randomness")
    p.add_argument("--out-dir", type=Path, default=Path("bench"), help="folder for the two stores")
    p.add_argument("--prefix", default="second_renderer", help="stores are <prefix>_{detect,labels}.h5")
    p.add_argument("--labels", type=Path, default=shared_data_dir() / "nyu" / "nyu_test_groundtruth_label.txt",
                   help="NYU uvd label text (14 joints a line) the poses come from")  # fmt: skip
    p.add_argument("--cube-mm", type=float, default=300.0, help="crop cube side (benchmarks/synth.py: 300)")
    p.add_argument("--crop-px", type=int, default=64, help="crop side (benchmarks/synth.py: 64)")
    p.add_argument("--sheet", type=Path, default=None, help="PNG: 16 crops and 4 full frames")
    p.add_argument("--overwrite", action="store_true", help="replace existing stores")
    return p


def main(args: argparse.Namespace) -> dict:
    if args.n <= 0:
        raise ValueError(f"number of frames must be positive, got {args.n}")
    t0 = time.perf_counter()
    cam, crop = get_camera("nyu"), CropConfig(cube_mm=args.cube_mm, crop_px=args.crop_px)
    poses = load_nyu_poses(args.labels, cam)
    rng = np.random.default_rng([RENDERER_VERSION, args.seed])
    rows = np.sort(rng.choice(len(poses), size=args.n, replace=args.n > len(poses)))
    attrs = {"poses": f"NYU test labels from {args.labels.name}, rows in nyu_rows",
             "nyu_rows": rows.tolist()}  # fmt: skip
    report = generate(poses[rows], args.out_dir, args.prefix, args.seed, cam, crop,
                      attrs=attrs, overwrite=args.overwrite, sheet=args.sheet)  # fmt: skip
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    report["frames_per_s"] = round(report["frames"] / report["wall_s"], 2) if report["wall_s"] else None
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
