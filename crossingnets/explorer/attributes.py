"""Interpretable attributes of a hand pose, measured geometrically from its 3D joints.

Works on any pose (a label, a decoded latent, an estimate), so the named sliders can be fitted on
training poses and checked on what the decoder makes of a moved latent. Every attribute is read
in the *palm frame* rebuilt from the joints, the hand frame of `crossingnets.hand.kinematics`:
origin at the palm centre, x radial (toward the thumb), y distal (toward the fingers), z palmar.
NYU's palm and two wrist joints are rigid points of that frame, so it is exact up to the labels'
own noise; NYU's finger "roots" are the PIP joints (`kinematics._CONVENTION_LANDMARKS`).

Orientation is the palm frame's rotation relative to `PALM_TO_CAMERA` (palm facing the camera,
fingers up), split as R = Ry(yaw) Rx(pitch) Rz(roll), camera axes (x right, y down, z forward):
roll turns the hand in the image plane first (clockwise +), then pitch tips the fingers toward the
camera and yaw turns the palm toward the image's left, about the image's vertical axis. The synthetic sampler draws hands the same
way (an in-plane roll, then a tilt about an image-plane axis), so roll spans the whole circle and
is circular; the named sliders fit it as (cos, sin) (`directions.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossingnets.hand.conventions import Convention
from crossingnets.hand.kinematics import PALM_TO_CAMERA


@dataclass(frozen=True)
class Attribute:
    name: str  # what the slider is called
    unit: str  # "deg" or "mm"
    what: str  # how it is measured, for the slider's help text
    circular: bool = False  # an angle spanning the whole circle (fitted as cos, sin)


_FINGERS = ("index", "middle", "ring", "pinky")
_FINGER_NAMES = {"index": "index", "middle": "middle", "ring": "ring", "pinky": "little"}
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("thumb curl", "deg", "bend of the thumb at its IP joint (0 = straight)"),
    *(
        Attribute(
            f"{_FINGER_NAMES[f]} curl",
            "deg",
            f"angle of the {_FINGER_NAMES[f]} finger's PIP-to-tip segment from the palm's length axis, "
            "toward the palm (0 = straight, 180 = folded back)",
        )
        for f in _FINGERS
    ),
    Attribute("spread", "mm", "distance across the palm between the index and little-finger PIP joints"),
    Attribute(
        "thumb opposition", "mm", "thumb tip to the little finger's PIP joint (smaller = more opposed)"
    ),
    Attribute("yaw", "deg", "palm turned toward the image's left (+) or right (-); 0 = facing the camera"),
    Attribute("pitch", "deg", "fingers tipped toward the camera (+) or away from it (-)"),
    Attribute("roll", "deg", "hand turned in the image plane (0 = fingers up, + = clockwise)", circular=True),
)
ATTRIBUTE_NAMES = tuple(a.name for a in ATTRIBUTES)

# Joints each attribute reads, by name; the conventions that have them all are supported.
_NEEDED = {
    "nyu": ("palm", "wrist1", "wrist2", "thumb_root1", "thumb_root2", "thumb_tip")
    + tuple(f"{f}_{p}" for f in _FINGERS for p in ("root", "tip")),
}


def _joint_index(convention: Convention) -> dict[str, int]:
    if convention.name not in _NEEDED:
        raise ValueError(
            f"pose attributes are defined on NYU's joints (palm, wrists, PIPs, tips); "
            f"a {convention.name.upper()} model has no attributes for the named sliders"
        )
    return {name: convention.joint_names.index(name) for name in _NEEDED[convention.name]}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def palm_frames(joints_xyz: np.ndarray, convention: Convention) -> np.ndarray:
    """(N, J, 3) joints, camera mm -> (N, 3, 3) palm frames: columns x radial, y distal, z palmar
    in camera coordinates (the hand -> camera rotation of `HandPose.rotation`)."""
    j = _joint_index(convention)
    joints = np.asarray(joints_xyz, np.float64)
    wrist_radial, wrist_ulnar, palm = joints[:, j["wrist1"]], joints[:, j["wrist2"]], joints[:, j["palm"]]
    y = _unit(palm - 0.5 * (wrist_radial + wrist_ulnar))
    across = wrist_radial - wrist_ulnar
    x = _unit(across - np.sum(across * y, axis=-1, keepdims=True) * y)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def orientation_deg(frames: np.ndarray) -> np.ndarray:
    """(N, 3, 3) palm frames -> (N, 3) yaw, pitch, roll in degrees (module docstring)."""
    m = np.asarray(frames, np.float64) @ PALM_TO_CAMERA.T
    pitch = np.arcsin(np.clip(-m[:, 1, 2], -1.0, 1.0))
    roll = np.arctan2(m[:, 1, 0], m[:, 1, 1])
    yaw = np.arctan2(m[:, 0, 2], m[:, 2, 2])
    return np.degrees(np.stack([yaw, pitch, roll], axis=1))


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(_unit(a) * _unit(b), axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def hand_attributes(joints_xyz: np.ndarray, convention: Convention) -> np.ndarray:
    """(N, J, 3) joints (camera axes, mm, any origin) -> (N, A) attributes in ATTRIBUTES order."""
    joints = np.asarray(joints_xyz, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (convention.num_joints, 3):
        raise ValueError(f"joints must be (N, {convention.num_joints}, 3), got {joints.shape}")
    j = _joint_index(convention)
    frames = palm_frames(joints, convention)
    local = (joints - joints[:, j["palm"], None]) @ frames  # (N, J, 3) in the palm frame
    thumb = _angle_deg(
        local[:, j["thumb_root2"]] - local[:, j["thumb_root1"]],
        local[:, j["thumb_tip"]] - local[:, j["thumb_root2"]],
    )
    seg = local[:, [j[f"{f}_tip"] for f in _FINGERS]] - local[:, [j[f"{f}_root"] for f in _FINGERS]]
    angle = np.degrees(np.arctan2(seg[..., 2], seg[..., 1]))  # (N, 4) from y toward z (palmar)
    curls = np.where(angle < -90.0, angle + 360.0, angle)  # [-90, 270): past 180 is a fist
    spread = local[:, j["index_root"], 0] - local[:, j["pinky_root"], 0]
    opposition = np.linalg.norm(local[:, j["thumb_tip"]] - local[:, j["pinky_root"]], axis=-1)
    return np.column_stack([thumb, curls, spread, opposition, orientation_deg(frames)])
