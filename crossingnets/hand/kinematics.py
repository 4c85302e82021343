"""A kinematic right hand: shape, pose, forward kinematics, landmarks and capsules.

Frames. The *hand frame* has its origin at the palm centre, x radial (towards the thumb), y distal
(towards the fingers), z palmar (out of the palm); it is right-handed for a right hand. The *camera
frame* is the one of `crossingnets.camera` (mm, x right, y down, z forward). `HandPose.rotation`
maps hand -> camera and `HandPose.translation_mm` is the palm centre in the camera frame, so a hand
whose palm faces the camera with the fingers up has rotation diag(1, -1, -1) (`PALM_TO_CAMERA`).

Chains. Every digit is the same 3-link chain, so the five are computed together:
base -> link 1 -> link 2 -> link 3, where base is the MCP (fingers) or the CMC (thumb), and the
links end at PIP, DIP, tip (fingers) or MCP, IP, tip (thumb). The base joint carries flexion,
abduction and a small axial twist; the two distal joints carry flexion only. Flexion turns a link
from its y axis towards its z axis (palmar); abduction turns it towards its x axis (radial for the
fingers). The twist is the passive axial rotation of the MCPs and the axial rotation the thumb's
saddle joint couples with opposition; without it a plane-constrained chain cannot reach tips
that real labels put off the flexion plane.

`forward_kinematics` is written once in torch (differentiable, used by `crossingnets.hand.ik`) and
accepts numpy at the boundary: numpy in -> numpy out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np
import torch

from crossingnets.hand.capsules import Capsules
from crossingnets.hand.conventions import Convention

Array = TypeVar("Array", np.ndarray, torch.Tensor)

DIGITS = ("thumb", "index", "middle", "ring", "pinky")
# Columns of HandPose.angles_rad, per digit.
ANGLE_NAMES = ("base_flex", "base_abd", "base_twist", "mid_flex", "dist_flex")
# Rigid points of the palm, in the hand frame (HandShape.palm_mm rows).
PALM_POINTS = (
    "wrist", "wrist_radial", "wrist_ulnar", "palm", "thumb_cmc",
    "index_mcp", "middle_mcp", "ring_mcp", "pinky_mcp",
)  # fmt: skip
_CHAIN_NAMES = (("thumb_mcp", "thumb_ip", "thumb_tip"),) + tuple(
    (f"{d}_pip", f"{d}_dip", f"{d}_tip") for d in DIGITS[1:]
)
# The superset of landmarks: the palm points, then each digit's three link ends.
LANDMARKS: tuple[str, ...] = PALM_POINTS + tuple(n for chain in _CHAIN_NAMES for n in chain)
_BASE_ROWS = (PALM_POINTS.index("thumb_cmc"),) + tuple(PALM_POINTS.index(f"{d}_mcp") for d in DIGITS[1:])

# Which landmark each dataset joint is. Lengths measured on the labels (shared/data/README.md) decide
# the ambiguous ones: NYU's finger "roots" lie 35-47 mm from the tips, the PIP; NYU's thumb root2
# lies 19.5 mm from the tip (IP) and root1 38.6 mm further (MCP). On ICVL's test labels the
# finger root -> mid -> tip medians (index, middle, ring, pinky: 29, 34, 30, 23 mm then 19, 22, 20,
# 18 mm) match middle + distal phalanx, not proximal + middle phalanx, so ICVL's "root" is the PIP
# and its "mid" the DIP; its thumb (30 mm, 25 mm) is MCP -> IP -> tip. (ICVL's labels are of a left
# hand: fit them mirrored, see `crossingnets.hand.ik.fit_ik`.) MSRA names the thumb's CMC, MCP and
# IP "mcp", "pip", "dip".
_CONVENTION_LANDMARKS: dict[str, dict[str, str]] = {
    "nyu": {
        **{f"{d}_tip": f"{d}_tip" for d in DIGITS},
        **{f"{d}_root": f"{d}_pip" for d in DIGITS[1:]},
        "thumb_root2": "thumb_ip",
        "thumb_root1": "thumb_mcp",
        "wrist2": "wrist_ulnar",
        "wrist1": "wrist_radial",
        "palm": "palm",
    },
    "icvl": {
        "palm": "palm",
        "thumb_root": "thumb_mcp",
        "thumb_mid": "thumb_ip",
        "thumb_tip": "thumb_tip",
        **{
            f"{d}_{p}": f"{d}_{q}"
            for d in DIGITS[1:]
            for p, q in (("root", "pip"), ("mid", "dip"), ("tip", "tip"))
        },
    },
    "msra": {
        "wrist": "wrist",
        **{f"{d}_{p}": f"{d}_{p}" for d in DIGITS[1:] for p in ("mcp", "pip", "dip", "tip")},
        "thumb_mcp": "thumb_cmc",
        "thumb_pip": "thumb_mcp",
        "thumb_dip": "thumb_ip",
        "thumb_tip": "thumb_tip",
    },
}

# Anatomical joint limits, degrees, (digit, ANGLE_NAMES, [lo, hi]). Fingers after Lin, Wu & Huang,
# "Modeling the constraints of human hand motion" (HUMO 2000): MCP flexion 0-90 (plus the
# ~20-30 deg passive hyperextension every hand shows), abduction about +-15, PIP 0-110, DIP 0-90;
# the twist is the few degrees of passive MCP axial rotation. Thumb after Hume et al., "Functional
# range of motion of the joints of the hand" (J Hand Surg 1990): MCP 0-56, IP up to 73 with ~20 of
# hyperextension; the CMC ranges are wide because its saddle carries opposition.
JOINT_LIMITS_DEG = np.array(
    [
        # base_flex,  base_abd,    base_twist,  mid_flex,   dist_flex
        [[-35, 50], [-40, 45], [-45, 45], [-15, 75], [-25, 90]],  # thumb (CMC, CMC, CMC, MCP, IP)
        [[-30, 95], [-20, 30], [-20, 20], [-10, 115], [-15, 90]],  # index
        [[-30, 95], [-20, 20], [-20, 20], [-10, 115], [-15, 90]],  # middle
        [[-30, 95], [-25, 15], [-20, 20], [-10, 115], [-15, 90]],  # ring
        [[-30, 95], [-35, 15], [-20, 20], [-10, 115], [-15, 90]],  # pinky
    ],
    dtype=np.float64,
)
JOINT_LIMITS_RAD = np.deg2rad(JOINT_LIMITS_DEG)

# Default (scale 1) palm points, hand frame, mm. The wrist points follow the NYU label medians
# (29.3 mm apart, 67.3 mm from the palm point, shared/data/README.md); the MCPs are placed so that
# palm -> PIP is 61-68 mm as in the same medians; the thumb CMC sits at the radial base of the palm.
DEFAULT_PALM_MM = np.array(
    [
        [0.0, -65.7, 0.0],  # wrist (centre)
        [14.6, -65.7, 0.0],  # wrist_radial
        [-14.6, -65.7, 0.0],  # wrist_ulnar
        [0.0, 0.0, 0.0],  # palm
        [20.0, -38.0, 8.0],  # thumb_cmc
        [25.0, 20.0, 0.0],  # index_mcp
        [8.0, 22.0, 0.0],  # middle_mcp
        [-9.0, 22.0, 0.0],  # ring_mcp
        [-26.0, 20.0, 0.0],  # pinky_mcp
    ]
)
# Default link lengths, mm: thumb metacarpal/proximal/distal; fingers proximal/middle/distal.
# Phalanx means of Buryanov & Kotiuk, "Proportions of hand segments" (Int J Morphol 2010), the
# distal link running to the tip of the pad, tuned so PIP -> tip matches the NYU medians
# (index 43.9, middle 47.3, ring 42.8, pinky 34.7 mm).
DEFAULT_LINKS_MM = np.array(
    [
        [44.0, 34.0, 22.0],  # thumb
        [40.0, 23.0, 21.0],  # index
        [45.0, 26.0, 21.0],  # middle
        [42.0, 24.0, 19.0],  # ring
        [33.0, 17.0, 18.0],  # pinky
    ]
)
# Capsule radii at scale 1 and thickness 1, mm, per digit and link: an adult finger is ~20 mm
# across at the PIP, each link thinner distally (the NYU test frame in shared/data shows 18-26 mm
# wide fingers, sensor edge spread included); the thumb metacarpal is fat, it carries the thenar.
DIGIT_RADII_MM = np.array(
    [
        [12.5, 11.0, 10.0],
        [9.8, 8.8, 7.9],
        [10.0, 9.0, 8.1],
        [9.5, 8.5, 7.7],
        [8.5, 7.5, 6.8],
    ]
)
PALM_RADIUS_MM = 13.0  # half the ~26-30 mm palm thickness
FOREARM_LENGTH_MM = 130.0  # what a sensor sees of the forearm in a crop
FOREARM_RADIUS_MM = 22.0  # two side-by-side capsules 26 mm apart: a ~70 x 44 mm oval section
FOREARM_HALF_SPACING_MM = 13.0
FOREARM_CAPSULES = 2  # `capsule_segments` ends with the forearm stub: two capsules side by side


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _thumb_rest_frame() -> np.ndarray:
    """(3, 3) columns = the thumb's x, y, z axes in the hand frame at zero CMC angles.

    The metacarpal points radially, distally and a little palmar; its flexion direction points
    across the palm (ulnar and palmar), so thumb flexion curls it towards the little finger.
    """
    y = _unit(np.array([0.8, 0.55, 0.22]))
    z = np.array([-0.55, 0.1, 0.83])
    z = _unit(z - (z @ y) * y)
    return np.stack([np.cross(y, z), y, z], axis=1)


# Rest orientation of each digit's base frame in the hand frame; fingers start along +y.
_REST_FRAMES = np.stack([_thumb_rest_frame()] + [np.eye(3)] * 4)
# The palm-facing-the-camera orientation, fingers up (image -y): hand x -> cam x, y -> -y, z -> -z.
PALM_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


class HandShape(NamedTuple):
    """Per-subject shape, batched. numpy or torch; lengths in mm before `scale`."""

    scale: Array  # (B,) overall size, 0.85-1.15 for natural hands
    palm_mm: Array  # (B, 9, 3) PALM_POINTS in the hand frame
    links_mm: Array  # (B, 5, 3) link lengths per digit (DIGITS order)
    thickness: Array  # (B,) multiplies every capsule radius


class HandPose(NamedTuple):
    """Articulation and placement, batched. numpy or torch."""

    angles_rad: Array  # (B, 5, 5) per digit (DIGITS) and ANGLE_NAMES
    rotation: Array  # (B, 3, 3) hand frame -> camera frame
    translation_mm: Array  # (B, 3) palm centre in the camera frame
    wrist_rad: Array  # (B, 2) wrist flexion (+palmar), deviation (+radial); moves only the forearm


def default_shape(n: int) -> HandShape:
    """`n` copies of the scale-1 hand (numpy float32)."""
    return HandShape(
        scale=np.ones(n, np.float32),
        palm_mm=np.broadcast_to(DEFAULT_PALM_MM, (n, *DEFAULT_PALM_MM.shape)).astype(np.float32),
        links_mm=np.broadcast_to(DEFAULT_LINKS_MM, (n, *DEFAULT_LINKS_MM.shape)).astype(np.float32),
        thickness=np.ones(n, np.float32),
    )


def flat_pose(n: int, distance_mm: float = 500.0) -> HandPose:
    """`n` flat open hands, all joint angles 0, palm facing the camera, fingers up, palm centre on
    the optical axis at `distance_mm` (numpy float32)."""
    return HandPose(
        angles_rad=np.zeros((n, 5, 5), np.float32),
        rotation=np.broadcast_to(PALM_TO_CAMERA, (n, 3, 3)).astype(np.float32),
        translation_mm=np.tile(np.array([0.0, 0.0, distance_mm], np.float32), (n, 1)),
        wrist_rad=np.zeros((n, 2), np.float32),
    )


def _turn(frame: torch.Tensor, angle: torch.Tensor, axis: int) -> torch.Tensor:
    """frame @ (right-handed rotation by `angle` about `axis`), (..., 3, 3) and (...,) -> (..., 3, 3).

    Mixes two columns instead of multiplying matrices: batched 3x3 matmuls dominated the IK's time.
    """
    i, j = [k for k in range(3) if k != axis]
    c, s = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    cols = list(frame.unbind(-1))
    cols[i], cols[j] = cols[i] * c + cols[j] * s, cols[j] * c - cols[i] * s
    return torch.stack(cols, dim=-1)


def _link_rotations(angles_rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 5, 5) angles -> the three links' orientations in the hand frame, each (B, 5, 3, 3).

    Base: rest @ abduction @ flexion @ twist (abduction about the metacarpal's palmar axis, flexion
    about the abducted radial axis, twist about the link itself); then one flexion per joint.
    Positive abduction turns y towards +x, i.e. a rotation of -angle about z.
    """
    rest = torch.as_tensor(_REST_FRAMES, dtype=angles_rad.dtype, device=angles_rad.device)
    a = angles_rad.unbind(-1)
    r1 = _turn(_turn(_turn(rest.expand(*angles_rad.shape[:-1], 3, 3), -a[1], 2), a[0], 0), a[2], 1)
    r2 = _turn(r1, a[3], 0)
    r3 = _turn(r2, a[4], 0)
    return r1, r2, r3


def _scaled(shape: HandShape) -> tuple[torch.Tensor, torch.Tensor]:
    s = shape.scale[:, None, None]
    return shape.palm_mm * s, shape.links_mm * s


def _local_landmarks(angles_rad: torch.Tensor, shape: HandShape) -> torch.Tensor:
    """(B, L, 3) LANDMARKS in the hand frame, mm."""
    palm, links = _scaled(shape)
    joints = palm[:, _BASE_ROWS]  # (B, 5, 3) MCPs and thumb CMC
    ends = []
    for k, rot in enumerate(_link_rotations(angles_rad)):
        joints = joints + rot[..., :, 1] * links[..., k : k + 1]  # along each link's y axis
        ends.append(joints)
    chains = torch.stack(ends, dim=2).flatten(1, 2)  # (B, 15, 3) digit-major
    return torch.cat([palm, chains], dim=1)


def _to_camera(points: torch.Tensor, pose: HandPose) -> torch.Tensor:
    """(B, N, 3) hand frame -> camera frame."""
    return points @ pose.rotation.transpose(-1, -2) + pose.translation_mm[:, None, :]


def _as_torch(nt: NamedTuple, dtype: torch.dtype | None = None) -> NamedTuple:
    """numpy or torch fields -> torch fields (`dtype` if given), sharing memory where it can."""
    return type(nt)(
        *(
            torch.as_tensor(np.require(f, requirements="CW") if isinstance(f, np.ndarray) else f, dtype=dtype)
            for f in nt
        )
    )


def _numpy_boundary(fn: Callable[..., torch.Tensor]) -> Callable:
    """Let a torch function of (pose, *shape) take numpy too: numpy in -> numpy out, computed in
    the pose's dtype. Torch inputs pass through untouched (and stay differentiable)."""

    @functools.wraps(fn)
    def wrapper(pose: HandPose, *rest: HandShape) -> Array:
        if not isinstance(pose.angles_rad, np.ndarray):
            return fn(pose, *rest)
        pose_t = _as_torch(pose)
        with torch.no_grad():
            return fn(pose_t, *(_as_torch(r, pose_t.angles_rad.dtype) for r in rest)).numpy()

    return wrapper


@_numpy_boundary
def forward_kinematics(pose: HandPose, shape: HandShape) -> Array:
    """Landmarks (B, L, 3) in camera mm, L = len(LANDMARKS), in LANDMARKS order.

    Takes torch tensors (differentiable; the result follows their dtype/device) or numpy arrays
    (returns numpy of the pose's dtype).
    """
    return _to_camera(_local_landmarks(pose.angles_rad, shape), pose)


def convention_landmark_indices(convention: Convention) -> np.ndarray:
    """(J,) index into LANDMARKS of each of the convention's joints, in its order."""
    names = _CONVENTION_LANDMARKS[convention.name]
    return np.array([LANDMARKS.index(names[j]) for j in convention.joint_names])


def landmarks_to_joints(landmarks: Array, convention: Convention) -> Array:
    """(B, L, 3) landmarks -> (B, J, 3) the convention's joints, in its order (numpy or torch)."""
    return landmarks[:, convention_landmark_indices(convention)]


@_numpy_boundary
def forearm_direction(pose: HandPose) -> Array:
    """(B, 3) unit vector, camera frame, from the wrist up the forearm (numpy or torch).

    At zero wrist angles the forearm continues the hand's -y axis. Wrist flexion bends the hand
    palmar relative to the forearm, so seen from the hand the forearm turns palmar too (+z of the
    hand frame); radial deviation likewise turns it radial (+x).
    """
    flex, dev = pose.wrist_rad.unbind(-1)
    down = torch.zeros_like(pose.translation_mm)
    down[:, 1] = -1.0
    turn = _turn(_turn(pose.rotation, -flex, 0), dev, 2)
    return (turn @ down[..., None])[..., 0]


def _linear_segments(at: dict[str, Array]) -> list[tuple[Array, Array, float]]:
    """Every capsule but the forearm stub as (start, end, radius mm at scale 1), built from the
    landmarks `at` by sums and constant factors alone, so that one-hot landmarks give its linear
    map (`_START_MAP`, `_END_MAP`). A digit's last capsule ends at the tip here; `capsule_segments`
    stops it one radius short so that its cap ends there."""
    segments = []
    # Digits: three links each.
    for d, (first, second, tip) in zip(DIGITS, _CHAIN_NAMES, strict=True):
        base = at["thumb_cmc" if d == "thumb" else f"{d}_mcp"]
        r = DIGIT_RADII_MM[DIGITS.index(d)]
        segments += [(base, at[first], r[0]), (at[first], at[second], r[1]), (at[second], at[tip], r[2])]
    # Palm: a metacarpal capsule per finger from the heel to the knuckle, the knuckle row, the heel
    # row, and the thumb web; together they fill the palm with no gaps at depth resolution.
    mcps = [at[f"{d}_mcp"] for d in DIGITS[1:]]
    wrist = at["wrist"]
    radial, ulnar = at["wrist_radial"] - wrist, at["wrist_ulnar"] - wrist
    sides = [radial, radial / 3, ulnar / 3, ulnar]  # the heel spreads the metacarpals evenly
    heels = [wrist + 0.2 * (m - wrist) + side for m, side in zip(mcps, sides, strict=True)]
    segments += [(heel, mcp, PALM_RADIUS_MM) for heel, mcp in zip(heels, mcps, strict=True)]
    segments += [(a, b, PALM_RADIUS_MM) for a, b in zip(mcps[:-1], mcps[1:], strict=True)]
    segments.append((heels[0], heels[-1], PALM_RADIUS_MM + 1.5))
    # Thenar eminence and thumb web: fill the triangle between the thumb metacarpal and the index
    # metacarpal, and follow the thumb as it opposes.
    segments += [
        (at["thumb_mcp"], at["index_mcp"], 0.7 * PALM_RADIUS_MM),
        (at["thumb_mcp"], at["palm"], PALM_RADIUS_MM),
        (0.5 * (at["thumb_cmc"] + at["thumb_mcp"]), 0.5 * (heels[0] + mcps[0]), PALM_RADIUS_MM + 1.0),
    ]
    return segments


# The capsules as one linear map of the landmarks: `capsule_segments` runs for every candidate of
# every refinement iteration (crossingnets.refinement), where ~100 small tensor ops cost more than
# the drawing (0.59 of 3.3 ms for 32 hands, one thread).
_SEGMENTS = _linear_segments(dict(zip(LANDMARKS, np.eye(len(LANDMARKS)), strict=True)))
_START_MAP, _END_MAP = (np.stack([seg[i] for seg in _SEGMENTS]) for i in (0, 1))  # (K, L) each
_RADII_MM = np.array([seg[2] for seg in _SEGMENTS])  # (K,)
_TIP_CAPSULES = np.arange(2, 3 * len(DIGITS), 3)  # each digit's last capsule
_TIP_ROWS, _DIP_ROWS = (np.array([LANDMARKS.index(c[i]) for c in _CHAIN_NAMES]) for i in (2, 1))


def capsule_segments(
    pose: HandPose, shape: HandShape, landmarks: torch.Tensor | None = None, forearm: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Start (B, K, 3), end (B, K, 3), radius (B, K) of every capsule, camera mm (torch tensors in,
    differentiable; the last FOREARM_CAPSULES are the forearm stub, left out without `forearm`).
    `landmarks`: the pose's `forward_kinematics`, where the caller has them already."""
    land = forward_kinematics(pose, shape) if landmarks is None else landmarks
    size = shape.scale * shape.thickness  # (B,)
    maps = (torch.as_tensor(m, dtype=land.dtype, device=land.device) for m in (_START_MAP, _END_MAP))
    starts, ends = (torch.einsum("kl,bld->bkd", m, land) for m in maps)
    radii = size[:, None] * torch.as_tensor(_RADII_MM, dtype=land.dtype, device=land.device)
    tips, dips = land[:, _TIP_ROWS], land[:, _DIP_ROWS]
    direction = (tips - dips) / (tips - dips).norm(dim=-1, keepdim=True).clamp_min(1e-6)
    ends[:, _TIP_CAPSULES] = tips - direction * radii[:, _TIP_CAPSULES, None]
    if not forearm:
        return starts, ends, radii
    # Forearm stub: two capsules side by side across the wrist give its flattened section.
    wrist, radial, ulnar = (land[:, LANDMARKS.index(n)] for n in ("wrist", "wrist_radial", "wrist_ulnar"))
    across = radial - ulnar
    across = (
        across
        / across.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        * (FOREARM_HALF_SPACING_MM * shape.scale)[:, None]
    )
    arm = forearm_direction(pose) * (FOREARM_LENGTH_MM * shape.scale)[:, None]
    arm_starts = torch.stack([wrist + across, wrist - across], 1)
    arm_radii = (size * FOREARM_RADIUS_MM)[:, None].expand(-1, FOREARM_CAPSULES)
    return (
        torch.cat([starts, arm_starts], 1),
        torch.cat([ends, arm_starts + arm[:, None]], 1),
        torch.cat([radii, arm_radii], 1),
    )


def hand_capsules(pose: HandPose, shape: HandShape) -> Capsules:
    """The posed hand as capsules (numpy float32), camera mm: 15 digit links, 11 palm capsules and
    a forearm stub of two; radii scale with `shape.scale * shape.thickness`."""
    pose_t = _as_torch(pose)
    with torch.no_grad():
        start, end, radius = capsule_segments(pose_t, _as_torch(shape, pose_t.angles_rad.dtype))
    return Capsules(*(t.numpy().astype(np.float32) for t in (start, end, radius)))
