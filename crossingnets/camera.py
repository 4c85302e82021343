"""Pinhole depth cameras and the uvd <-> xyz lift.

Frames: xyz in mm, camera frame, x right, y down, z forward (away from the sensor);
uvd = (column px, row px, depth mm). Our presets use positive fy (y down). The community's NYU
evaluation uses fy = -587.07 (y up); Euclidean joint errors are identical either way, so
`crossingnets.metrics` may use either sign.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    fx: float  # focal length along u, px
    fy: float  # focal length along v, px
    cx: float  # principal point u, px
    cy: float  # principal point v, px
    width_px: int
    height_px: int

    def __post_init__(self) -> None:
        if not (np.isfinite([self.fx, self.fy, self.cx, self.cy]).all() and self.fx > 0 and self.fy > 0):
            raise ValueError(f"camera focal lengths must be finite and > 0, got fx={self.fx}, fy={self.fy}")
        if self.width_px <= 0 or self.height_px <= 0:
            raise ValueError(f"camera size must be positive, got {self.width_px}x{self.height_px}")

    def to_dict(self) -> dict:
        return asdict(self)


# Sensor intrinsics of the three datasets (values as used by the community's evaluation scripts).
CAMERAS: dict[str, Intrinsics] = {
    "nyu": Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480),  # Kinect v1
    "icvl": Intrinsics(240.99, 240.96, 160.0, 120.0, 320, 240),  # Creative Senz3D
    "msra": Intrinsics(241.42, 241.42, 160.0, 120.0, 320, 240),  # Creative Interactive Gesture Camera
}


def get_camera(name: str) -> Intrinsics:
    try:
        return CAMERAS[name]
    except KeyError:
        raise ValueError(f"unknown camera {name!r}; expected one of {sorted(CAMERAS)}") from None


def uvd_to_xyz(uvd: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """(..., 3) pixels + mm -> (..., 3) camera-frame mm."""
    uvd = np.asarray(uvd, dtype=np.float64)
    x = (uvd[..., 0] - cam.cx) * uvd[..., 2] / cam.fx
    y = (uvd[..., 1] - cam.cy) * uvd[..., 2] / cam.fy
    return np.stack([x, y, uvd[..., 2]], axis=-1)


def xyz_to_uvd(xyz: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """(..., 3) camera-frame mm -> (..., 3) pixels + mm. Points must have z > 0."""
    xyz = np.asarray(xyz, dtype=np.float64)
    z = xyz[..., 2]
    u = xyz[..., 0] * cam.fx / z + cam.cx
    v = xyz[..., 1] * cam.fy / z + cam.cy
    return np.stack([u, v, z], axis=-1)
