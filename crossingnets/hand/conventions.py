"""Joint conventions of the three datasets, as data.

Orders follow the datasets' label files (see shared/data/README.md). `fingers` gives each joint's
finger (for colouring); `bones` are (parent, child) index pairs for drawing; `root` is the joint
the model expresses the pose relative to; `left_hand` says which hand the labels describe.
"""

from __future__ import annotations

from dataclasses import dataclass

FINGERS = ("thumb", "index", "middle", "ring", "pinky", "palm")
FINGER_COLORS = {  # one colour per finger, shared by every figure
    "thumb": "#e6194b",
    "index": "#f58231",
    "middle": "#3cb44b",
    "ring": "#4363d8",
    "pinky": "#911eb4",
    "palm": "#505050",
}


@dataclass(frozen=True)
class Convention:
    name: str
    joint_names: tuple[str, ...]
    fingers: tuple[str, ...]  # finger of each joint, one of FINGERS
    bones: tuple[tuple[int, int], ...]
    root: int  # index of the joint the pose is expressed relative to
    default_cube_mm: float  # side of the metric crop cube
    # The labels describe a left hand, so the right-hand kinematic model is fitted to their mirror
    # image (`crossingnets.hand.ik.fit_ik(left_hand=...)`).
    left_hand: bool

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def bone_fingers(self) -> tuple[str, ...]:
        """Finger of each bone (its child joint's finger), for colouring."""
        return tuple(self.fingers[c] for _, c in self.bones)


NYU = Convention(
    name="nyu",
    joint_names=(
        "pinky_tip",
        "pinky_root",
        "ring_tip",
        "ring_root",
        "middle_tip",
        "middle_root",
        "index_tip",
        "index_root",
        "thumb_tip",
        "thumb_root2",
        "thumb_root1",
        "wrist2",
        "wrist1",
        "palm",
    ),  # fmt: skip
    fingers=(
        "pinky",
        "pinky",
        "ring",
        "ring",
        "middle",
        "middle",
        "index",
        "index",
        "thumb",
        "thumb",
        "thumb",
        "palm",
        "palm",
        "palm",
    ),  # fmt: skip
    bones=(
        (13, 1),
        (1, 0),
        (13, 3),
        (3, 2),
        (13, 5),
        (5, 4),
        (13, 7),
        (7, 6),
        (13, 10),
        (10, 9),
        (9, 8),
        (13, 11),
        (13, 12),
    ),  # fmt: skip
    root=13,
    default_cube_mm=300.0,  # NYU hands are seen with more forearm; DeepPrior++ uses 300 mm
    left_hand=False,
)

# Indices of NYU's 14 evaluated joints among the 36 of joint_data.mat.
NYU_36_TO_14 = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)

ICVL = Convention(
    name="icvl",
    joint_names=(
        "palm",
        "thumb_root",
        "thumb_mid",
        "thumb_tip",
        "index_root",
        "index_mid",
        "index_tip",
        "middle_root",
        "middle_mid",
        "middle_tip",
        "ring_root",
        "ring_mid",
        "ring_tip",
        "pinky_root",
        "pinky_mid",
        "pinky_tip",
    ),  # fmt: skip
    fingers=("palm",) + tuple(f for f in FINGERS[:5] for _ in range(3)),
    bones=tuple(
        pair for k in range(5) for pair in ((0, 1 + 3 * k), (1 + 3 * k, 2 + 3 * k), (2 + 3 * k, 3 + 3 * k))
    ),
    root=0,
    default_cube_mm=250.0,  # Crossing Nets' code
    left_hand=True,  # fitted both ways, only the mirror fits (tests/test_ik.py)
)

_MSRA_FINGERS = ("index", "middle", "ring", "pinky", "thumb")
MSRA = Convention(
    name="msra",
    joint_names=("wrist",) + tuple(f"{f}_{p}" for f in _MSRA_FINGERS for p in ("mcp", "pip", "dip", "tip")),
    fingers=("palm",) + tuple(f for f in _MSRA_FINGERS for _ in range(4)),
    bones=tuple(
        pair
        for k in range(5)
        for pair in (
            (0, 1 + 4 * k),
            (1 + 4 * k, 2 + 4 * k),
            (2 + 4 * k, 3 + 4 * k),
            (3 + 4 * k, 4 + 4 * k),
        )
    ),
    root=0,
    default_cube_mm=250.0,
    left_hand=False,
)

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (NYU, ICVL, MSRA)}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown convention {name!r}; expected one of {sorted(CONVENTIONS)}") from None
