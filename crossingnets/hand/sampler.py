"""Natural random hands: gesture templates, finger synergies, per-subject shape, camera placement.

Every draw comes from the caller's `np.random.Generator` in a fixed order, so the same seed gives
bitwise-identical hands. Poses respect `JOINT_LIMITS_RAD`; the palm faces the camera within
`max_palm_tilt_deg`; the palm centre lies `distance_mm` away and the whole hand projects inside
the frame with a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from crossingnets.camera import Intrinsics, xyz_to_uvd
from crossingnets.hand.kinematics import (
    DEFAULT_LINKS_MM,
    DEFAULT_PALM_MM,
    JOINT_LIMITS_RAD,
    PALM_POINTS,
    PALM_TO_CAMERA,
    HandPose,
    HandShape,
    forearm_direction,
    forward_kinematics,
)

# Finger curl 0 (straight) .. 1 (fist) -> MCP and PIP flexion, degrees; DIP follows PIP.
_CURL_DEG = np.array([85.0, 100.0])
# Thumb postures, degrees of (CMC flex, CMC abd, CMC twist, MCP flex, IP flex).
_THUMB_DEG = {
    "out": (-10.0, 25.0, 0.0, 5.0, 5.0),  # extended and spread, as in an open hand
    "tucked": (35.0, -15.0, 20.0, 45.0, 40.0),  # folded over the curled fingers
    "opposed": (30.0, 5.0, 30.0, 15.0, 20.0),  # tip towards the index tip: pinch, ok sign
    "side": (5.0, -20.0, 5.0, 10.0, 10.0),  # along the index, as in pointing
}
# Gesture templates: (index, middle, ring, pinky) curls, thumb posture, finger spread.
GESTURES: dict[str, tuple[tuple[float, float, float, float], str, float]] = {
    "open": ((0.0, 0.0, 0.0, 0.0), "out", 1.0),
    "fist": ((1.0, 1.0, 1.0, 1.0), "tucked", 0.0),
    "point": ((0.0, 1.0, 1.0, 1.0), "side", 0.0),
    "pinch": ((0.45, 0.25, 0.2, 0.15), "opposed", 0.3),
    "ok": ((0.55, 0.05, 0.05, 0.05), "opposed", 0.8),
    "count1": ((0.0, 1.0, 1.0, 1.0), "tucked", 0.0),
    "count2": ((0.0, 0.0, 1.0, 1.0), "tucked", 0.8),
    "count3": ((0.0, 0.0, 0.0, 1.0), "tucked", 0.6),
    "count4": ((0.0, 0.0, 0.0, 0.0), "tucked", 0.6),
    "count5": ((0.0, 0.0, 0.0, 0.0), "out", 0.8),
    "relaxed": ((0.3, 0.35, 0.4, 0.45), "side", 0.3),
}
# Abduction of a fully spread finger (index, middle, ring, pinky), degrees, positive radial.
_SPREAD_DEG = np.array([12.0, 0.0, -10.0, -22.0])


@dataclass(frozen=True)
class SamplerConfig:
    distance_mm: tuple[float, float] = (300.0, 900.0)  # palm centre depth range
    max_palm_tilt_deg: float = 90.0  # palm normal within this of pointing at the camera
    max_roll_deg: float = 180.0  # in-plane rotation of the hand, +-
    # The arm comes from a body behind the hand: the forearm may point at most this much towards
    # the camera (it would otherwise fill the crop in front of the hand).
    max_forearm_towards_camera_deg: float = 20.0
    margin_px: float = 6.0  # keep every landmark this far inside the frame ...
    margin_mm: float = 15.0  # ... plus this much flesh around it
    gesture_prob: tuple[tuple[str, float], ...] = (
        ("random", 0.3),  # correlated random curls: the space between templates
        ("open", 0.12),
        ("fist", 0.1),
        ("point", 0.07),
        ("pinch", 0.07),
        ("ok", 0.05),
        ("count1", 0.03),
        ("count2", 0.05),
        ("count3", 0.04),
        ("count4", 0.03),
        ("count5", 0.04),
        ("relaxed", 0.1),
    )
    curl_noise: float = 0.12  # per-finger curl noise around the template
    synergy_noise: float = 0.1  # curl offset shared by all four fingers (one synergy)
    angle_noise_deg: float = 6.0  # independent noise on every joint angle
    dip_coupling: float = 2.0 / 3.0  # DIP = k * PIP (Lin, Wu & Huang, HUMO 2000)
    dip_noise_deg: float = 5.0
    wrist_flex_deg: float = 35.0  # forearm direction, uniform +-
    wrist_dev_deg: float = 15.0
    scale_range: tuple[float, float] = (0.85, 1.15)  # overall hand size per subject
    proportion_noise: float = 0.05  # relative sd of each link length and palm axis
    palm_jitter_mm: float = 2.0  # sd of each palm point's own offset
    thickness_range: tuple[float, float] = (0.85, 1.15)

    def __post_init__(self) -> None:
        lo, hi = self.distance_mm
        if not 0 < lo <= hi:
            raise ValueError(f"distance_mm must satisfy 0 < lo <= hi, got {self.distance_mm}")
        if not 0.0 < self.max_palm_tilt_deg <= 180.0:
            raise ValueError(f"max_palm_tilt_deg must be in (0, 180], got {self.max_palm_tilt_deg}")
        unknown = {g for g, _ in self.gesture_prob} - set(GESTURES) - {"random"}
        if unknown:
            raise ValueError(f"unknown gestures {sorted(unknown)}; expected {sorted(GESTURES)} or 'random'")
        if min(p for _, p in self.gesture_prob) < 0 or sum(p for _, p in self.gesture_prob) <= 0:
            raise ValueError("gesture_prob weights must be >= 0 with a positive sum")


def sample_shapes(rng: np.random.Generator, n: int, cfg: SamplerConfig) -> HandShape:
    """`n` subjects: overall scale, per-link and per-palm-axis proportions, finger thickness."""
    scale = rng.uniform(*cfg.scale_range, n)
    links = DEFAULT_LINKS_MM * (1 + cfg.proportion_noise * rng.standard_normal((n, 5, 3)))
    palm_axes = 1 + cfg.proportion_noise * rng.standard_normal((n, 1, 3))  # width, length, depth
    palm = DEFAULT_PALM_MM * palm_axes + cfg.palm_jitter_mm * rng.standard_normal((n, 9, 3))
    palm[:, PALM_POINTS.index("palm")] = 0.0  # the palm point is the hand frame's origin
    thickness = rng.uniform(*cfg.thickness_range, n)
    return HandShape(*(a.astype(np.float32) for a in (scale, palm, links, thickness)))


def _template_angles_deg(curls: np.ndarray, thumb: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """(n, 4) finger curls, (n, 5) thumb angles, (n,) spread -> (n, 5, 5) angles (DIP left 0)."""
    angles = np.zeros((len(curls), 5, 5))
    angles[:, 0] = thumb
    angles[:, 1:, 0] = curls * _CURL_DEG[0]
    angles[:, 1:, 3] = curls * _CURL_DEG[1]
    # Curled fingers converge rather than spread.
    angles[:, 1:, 1] = spread[:, None] * _SPREAD_DEG * (1 - curls)
    return angles


def sample_articulations(rng: np.random.Generator, n: int, cfg: SamplerConfig) -> np.ndarray:
    """(n, 5, 5) joint angles, radians, within JOINT_LIMITS_RAD.

    A gesture template (or correlated random curls) + a synergy offset shared by the fingers +
    per-finger curl noise + independent joint noise; the DIP then follows the PIP.
    """
    names = [g for g, _ in cfg.gesture_prob]
    prob = np.array([p for _, p in cfg.gesture_prob])
    choice = rng.choice(len(names), size=n, p=prob / prob.sum())
    curls = np.empty((n, 4))
    thumb = np.empty((n, 5))
    spread = np.empty(n)
    thumbs = list(_THUMB_DEG)
    random_thumb = rng.integers(len(thumbs), size=n)
    random_base = rng.uniform(0, 1, n)
    random_spread = rng.uniform(0, 1, n)
    for i, k in enumerate(choice):
        if names[k] == "random":
            curls[i] = random_base[i]
            thumb[i] = _THUMB_DEG[thumbs[random_thumb[i]]]
            spread[i] = random_spread[i]
        else:
            curls[i], thumb_name, spread[i] = GESTURES[names[k]]
            thumb[i] = _THUMB_DEG[thumb_name]
    # Random hands vary more per finger; ring and pinky share tendons, so they move together.
    per_finger = rng.standard_normal((n, 4)) * cfg.curl_noise
    per_finger[:, 3] = 0.5 * per_finger[:, 2] + 0.5 * per_finger[:, 3]
    is_random = np.array([names[k] == "random" for k in choice])
    per_finger[is_random] *= 2.5
    curls = np.clip(curls + per_finger + cfg.synergy_noise * rng.standard_normal((n, 1)), 0.0, 1.0)
    angles = _template_angles_deg(curls, thumb, spread)
    angles += cfg.angle_noise_deg * rng.standard_normal(angles.shape)
    angles[:, 1:, 4] = cfg.dip_coupling * angles[:, 1:, 3] + cfg.dip_noise_deg * rng.standard_normal((n, 4))
    return np.clip(np.deg2rad(angles), JOINT_LIMITS_RAD[..., 0], JOINT_LIMITS_RAD[..., 1])


def _rotations(rng: np.random.Generator, n: int, cfg: SamplerConfig) -> np.ndarray:
    """(n, 3, 3) hand -> camera rotations: an in-plane roll of the palm-facing hand, then a tilt
    about an image-plane axis, uniform over the cap of palm normals within max_palm_tilt_deg."""
    roll = np.deg2rad(cfg.max_roll_deg) * rng.uniform(-1, 1, n)
    tilt = np.arccos(rng.uniform(np.cos(np.deg2rad(cfg.max_palm_tilt_deg)), 1.0, n))
    azimuth = rng.uniform(0, 2 * np.pi, n)
    roll_m = Rotation.from_rotvec(roll[:, None] * np.array([0.0, 0.0, 1.0])).as_matrix()
    axes = np.stack([np.cos(azimuth), np.sin(azimuth), np.zeros(n)], axis=1)
    tilt_m = Rotation.from_rotvec(axes * tilt[:, None]).as_matrix()
    return tilt_m @ roll_m @ PALM_TO_CAMERA


def sample_orientations(
    rng: np.random.Generator, n: int, cfg: SamplerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, 3) hand -> camera rotations and (n, 2) wrist angles, redrawn until the forearm
    points no more than cfg.max_forearm_towards_camera_deg towards the camera."""
    rotation = np.zeros((n, 3, 3))
    wrist = np.zeros((n, 2))
    limit = np.deg2rad([cfg.wrist_flex_deg, cfg.wrist_dev_deg])
    min_z = -np.sin(np.deg2rad(cfg.max_forearm_towards_camera_deg))
    todo = np.arange(n)
    while len(todo):  # each round keeps most draws, so this ends after a few rounds
        r = _rotations(rng, len(todo), cfg)
        w = limit * rng.uniform(-1, 1, (len(todo), 2))
        unposed = HandPose(np.zeros((len(todo), 5, 5)), r, np.zeros((len(todo), 3)), w)
        ok = forearm_direction(unposed)[:, 2] >= min_z
        rotation[todo[ok]], wrist[todo[ok]] = r[ok], w[ok]
        todo = todo[~ok]
    return rotation, wrist


def _centre_interval(
    offsets: np.ndarray, depth: np.ndarray, f: float, c: float, size_px: int, cfg: SamplerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Range of the palm centre's x (or y), mm, that keeps every landmark inside the image.

    offsets (n, L): landmark x (or y) minus the centre's; depth (n, L): landmark depth. Projection
    is linear in the centre coordinate at fixed depth, so each landmark bounds it on both sides.
    """
    lo = (cfg.margin_px - c) * depth / f - offsets + cfg.margin_mm
    hi = (size_px - cfg.margin_px - c) * depth / f - offsets - cfg.margin_mm
    return lo.max(axis=1), hi.min(axis=1)


def sample_translations(
    rng: np.random.Generator, offsets_mm: np.ndarray, cam: Intrinsics, cfg: SamplerConfig
) -> np.ndarray:
    """(n, 3) palm-centre positions for hands whose landmarks sit at `offsets_mm` (n, L, 3) from it.

    Depth is uniform in cfg.distance_mm, then x and y uniform over the positions that keep the hand
    in frame; a depth at which the hand cannot fit (too close for a small sensor) is redrawn.
    """
    n = len(offsets_mm)
    translation = np.zeros((n, 3))
    todo = np.arange(n)
    for _ in range(100):
        z = rng.uniform(*cfg.distance_mm, len(todo))
        u01 = rng.uniform(0, 1, (len(todo), 2))
        depth = z[:, None] + offsets_mm[todo, :, 2]
        x_lo, x_hi = _centre_interval(offsets_mm[todo, :, 0], depth, cam.fx, cam.cx, cam.width_px, cfg)
        y_lo, y_hi = _centre_interval(offsets_mm[todo, :, 1], depth, cam.fy, cam.cy, cam.height_px, cfg)
        fits = (x_lo <= x_hi) & (y_lo <= y_hi)
        x = x_lo + u01[:, 0] * (x_hi - x_lo)
        y = y_lo + u01[:, 1] * (y_hi - y_lo)
        translation[todo[fits]] = np.stack([x, y, z], axis=1)[fits]
        todo = todo[~fits]
        if len(todo) == 0:
            return translation
    raise ValueError(
        f"{len(todo)} hands do not fit a {cam.width_px}x{cam.height_px} frame at "
        f"{cfg.distance_mm} mm with margins {cfg.margin_px} px + {cfg.margin_mm} mm"
    )


def sample_hands(
    rng: np.random.Generator, n: int, cam: Intrinsics, cfg: SamplerConfig = SamplerConfig()
) -> tuple[HandPose, HandShape]:
    """`n` random right hands seen by `cam`: (HandPose, HandShape) of numpy float32 arrays."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    shape = sample_shapes(rng, n, cfg)
    angles = sample_articulations(rng, n, cfg)
    rotation, wrist = sample_orientations(rng, n, cfg)
    centred = HandPose(angles, rotation, np.zeros((n, 3)), wrist)
    offsets = forward_kinematics(centred, shape)
    translation = sample_translations(rng, offsets, cam, cfg)
    pose = HandPose(*(a.astype(np.float32) for a in (angles, rotation, translation, wrist)))
    return pose, shape


def joints_in_frame(joints_xyz_mm: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """(B, J, 3) camera mm -> (B,) whether every joint lies in front of the camera and inside the
    image."""
    uvd = xyz_to_uvd(joints_xyz_mm, cam)
    inside = (
        (uvd[..., 0] >= 0) & (uvd[..., 0] < cam.width_px) & (uvd[..., 1] >= 0) & (uvd[..., 1] < cam.height_px)
    )
    return (inside & (uvd[..., 2] > 0)).all(axis=1)
