"""Pinhole depth cameras: intrinsics, presets of common sensors, camera files, and the uvd <-> xyz lift.

Frames: xyz in mm, camera frame, x right, y down, z forward (away from the sensor);
uvd = (column px, row px, depth mm), pixel centres at integer u, v. Our presets use positive fy
(y down). The community's NYU evaluation uses fy = -587.07 (y up); Euclidean joint errors are
identical either way, so `crossingnets.metrics` may use either sign.

A frame's camera is named by a preset (`PRESETS`: the three datasets' and the depth sensors people
use, each at its native depth resolutions), read from a file (`read_camera_file`: a ROS
camera_info YAML, a RealSense/Open3D-style JSON) or typed in; `camera_for_frame` checks it against
the frame's size and scales it where the frame is an exact multiple (2x2 binning, half resolution).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

# The hand a frame shows. The models know right hands: a left one is predicted in the mirror image,
# seen by the mirrored camera (`Intrinsics.mirrored`), and mirrored back.
Handedness = Literal["right", "left"]
HANDEDNESS: tuple[Handedness, ...] = ("right", "left")


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

    @property
    def size(self) -> str:
        return f"{self.width_px}x{self.height_px}"

    def to_dict(self) -> dict:
        return asdict(self)

    def scaled(self, factor: float) -> Intrinsics:
        """The same sensor at `factor` times the resolution (0.5: 2x2 binning). Pixel centres sit at
        integer coordinates, so the principal point maps as (c + 0.5) * factor - 0.5."""
        return Intrinsics(
            self.fx * factor,
            self.fy * factor,
            (self.cx + 0.5) * factor - 0.5,
            (self.cy + 0.5) * factor - 0.5,
            round(self.width_px * factor),
            round(self.height_px * factor),
        )

    def mirrored(self) -> Intrinsics:
        """The camera of the left-right mirrored image (column u -> width - 1 - u)."""
        return replace(self, cx=self.width_px - 1 - self.cx)


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


# ---------------------------------------------------------------------------------------------
# Presets of depth sensors


def fov_camera(width_px: int, height_px: int, vfov_deg: float) -> Intrinsics:
    """Nominal intrinsics from a datasheet's vertical field of view: square pixels, principal point
    at the image centre. The vertical FOV is the one the RealSense datasheets give with the tighter
    tolerance (D435: 58 +-1 deg against 87 +-3 deg horizontally)."""
    f = 0.5 * height_px / math.tan(math.radians(vfov_deg) / 2)
    return Intrinsics(f, f, (width_px - 1) / 2, (height_px - 1) / 2, width_px, height_px)


@dataclass(frozen=True)
class CameraPreset:
    label: str  # as messages name it: "NYU", "RealSense D435"
    modes: tuple[Intrinsics, ...]  # native depth resolutions; exact multiples of them are scaled
    depth_unit_mm: float  # the unit the device's SDK writes depth in (SR300/SR305: 1/8 mm)
    source: str  # where the values come from


PRESET_NOTE = (
    "Presets are nominal values (a datasheet's field of view, or one unit's calibration); every unit "
    "differs by a few percent, so a device's own calibration is better: pass its ROS camera_info YAML "
    "or its intrinsics as JSON (rs-enumerate-devices -c, pyrealsense2's intrinsics) as the camera."
)

_DATASET_SOURCE = "the intrinsics of the community's evaluation scripts (as in crossingnets.camera.CAMERAS)"
_D400 = "Intel RealSense D400 Series Product Family Datasheet: depth field of view of the 16:9 modes"
# One Azure Kinect's factory calibration (normalised to its 1024x1024 sensor: cx 0.51227, cy 0.49451,
# fx 0.49212, fy 0.49217), as printed by the Azure Kinect SDK in github.com/panispani/3DReconstruct
# pointCloudGen/calib.md. WFOV unbinned is the whole sensor; NFOV unbinned is its 640x576 window at
# (192, 180) px. Femto Bolt / Mega use the same depth sensor and modes (Orbbec's datasheet).
_AZURE_MODES = (
    Intrinsics(503.928, 503.979, 332.064, 325.881, 640, 576),  # NFOV unbinned (binned: 320x288)
    Intrinsics(503.928, 503.979, 524.064, 505.881, 1024, 1024),  # WFOV unbinned (binned: 512x512)
)
_AZURE_SOURCE = (
    "one Azure Kinect's factory calibration as the Azure Kinect SDK prints it "
    "(github.com/panispani/3DReconstruct, pointCloudGen/calib.md); NFOV = the 640x576 window at (192, 180)"
)
_SR305 = Intrinsics(476.007, 476.007, 313.683, 242.755, 640, 480)

PRESETS: dict[str, CameraPreset] = {
    "nyu": CameraPreset("NYU", (CAMERAS["nyu"],), 1.0, f"NYU hand dataset (Kinect v1): {_DATASET_SOURCE}"),
    "icvl": CameraPreset("ICVL", (CAMERAS["icvl"],), 1.0, f"ICVL hand dataset: {_DATASET_SOURCE}"),
    "msra": CameraPreset("MSRA", (CAMERAS["msra"],), 1.0, f"MSRA hand dataset: {_DATASET_SOURCE}"),
    "kinect_v1": CameraPreset(
        "Kinect v1", (CAMERAS["nyu"],), 1.0, "the calibration of the NYU dataset's Kinect v1 (camera 1)"
    ),
    "kinect_v2": CameraPreset(
        "Kinect v2", (fov_camera(512, 424, 60.0),), 1.0, "Kinect for Windows v2 specification: 70.6 x 60 deg"
    ),
    "azure_kinect": CameraPreset("Azure Kinect", _AZURE_MODES, 1.0, _AZURE_SOURCE),
    "femto_bolt": CameraPreset(
        "Orbbec Femto Bolt/Mega", _AZURE_MODES, 1.0, f"Azure Kinect's depth modes: {_AZURE_SOURCE}"
    ),
    "d415": CameraPreset(
        "RealSense D415",
        (fov_camera(1280, 720, 40.0), fov_camera(848, 480, 40.0)),
        1.0,
        f"{_D400}, D415: 65 +-2 x 40 +-1 deg",
    ),
    "d435": CameraPreset(
        "RealSense D435",
        (fov_camera(1280, 720, 58.0), fov_camera(848, 480, 58.0)),
        1.0,
        f"{_D400}, D435/D435i: 87 +-3 x 58 +-1 deg",
    ),
    "d455": CameraPreset(
        "RealSense D455",
        (fov_camera(1280, 720, 58.0), fov_camera(848, 480, 58.0)),
        1.0,
        f"{_D400}, D455: 87 +-3 x 58 +-1 deg",
    ),
    "l515": CameraPreset(
        "RealSense L515",
        (fov_camera(1024, 768, 55.0), fov_camera(640, 480, 55.0)),
        0.25,  # the L515's default depth scale, 0.00025 m
        "Intel RealSense LiDAR Camera L515 Datasheet: 70 +-2 x 55 +-2 deg",
    ),
    "sr300": CameraPreset(
        "RealSense SR300", (_SR305,), 0.125, "the SR305's values (the SR305 houses the SR300's depth module)"
    ),
    "sr305": CameraPreset(
        "RealSense SR305",
        (_SR305,),
        0.125,  # 1/8 mm: the SDK's depth scale 0.000125 m
        "one SR305's calibration in its dataset's readme (github.com/LadaOndris/hand-recognition, "
        "datasets/custom/readme.txt)",
    ),
    "astra": CameraPreset(
        "Orbbec Astra", (fov_camera(640, 480, 49.5),), 1.0, "Orbbec Astra series datasheet: 60 x 49.5 deg"
    ),
}
CUSTOM = "custom"  # the camera name for intrinsics typed in with the frame


# ---------------------------------------------------------------------------------------------
# Camera files

CAMERA_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def _number(data: Mapping, keys: tuple[str, ...], path: Path) -> float:
    lower = {str(k).lower(): v for k, v in data.items()}
    for key in keys:
        if key in lower:
            try:
                return float(lower[key])
            except (TypeError, ValueError):
                raise ValueError(f"camera file {path.name}: {key} is {lower[key]!r}, not a number") from None
    raise ValueError(f"camera file {path.name} has no {' or '.join(keys)}")


def _matrix_intrinsics(k: object, path: Path, what: str) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a row-major 3x3 camera matrix given as 9 numbers."""
    try:
        m = np.asarray(k, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError):
        raise ValueError(f"camera file {path.name}: {what} must hold 9 numbers (a 3x3 matrix)") from None
    return m[0, 0], m[1, 1], m[0, 2], m[1, 2]


def intrinsics_from_mapping(data: Mapping, path: Path) -> Intrinsics:
    """The intrinsics in a parsed camera file, in any of the layouts people save:
    - ROS camera_info YAML (camera_calibration_parsers): image_width, image_height, camera_matrix.data;
    - a CameraInfo message as `ros2 topic echo` / `rostopic echo` prints it: width, height, k / K;
    - RealSense intrinsics (rs2_intrinsics' fields): width, height, fx, fy, ppx, ppy (or cx, cy);
    - Open3D's PinholeCameraIntrinsic JSON: width, height, intrinsic_matrix (column-major).
    A single nested object (`{"depth": {...}}`, `{"intrinsics": {...}}`) is looked into.
    """
    lower = {str(k).lower(): v for k, v in data.items()}
    if len(lower) == 1 and isinstance(next(iter(lower.values())), Mapping):
        return intrinsics_from_mapping(next(iter(lower.values())), path)
    width = _number(lower, ("image_width", "width"), path)
    height = _number(lower, ("image_height", "height"), path)
    if "camera_matrix" in lower:
        matrix = lower["camera_matrix"]
        values = matrix.get("data") if isinstance(matrix, Mapping) else matrix
        fx, fy, cx, cy = _matrix_intrinsics(values, path, "camera_matrix")
    elif "k" in lower:
        fx, fy, cx, cy = _matrix_intrinsics(lower["k"], path, "k")
    elif "intrinsic_matrix" in lower:  # Open3D writes it column-major
        fx, fy, cx, cy = _matrix_intrinsics(
            np.reshape(lower["intrinsic_matrix"], (3, 3)).T, path, "intrinsic_matrix"
        )
    else:
        fx, fy = _number(lower, ("fx",), path), _number(lower, ("fy",), path)
        cx, cy = _number(lower, ("ppx", "cx"), path), _number(lower, ("ppy", "cy"), path)
    if width != int(width) or height != int(height):
        raise ValueError(
            f"camera file {path.name}: width and height must be whole pixels, got {width}x{height}"
        )
    try:
        return Intrinsics(float(fx), float(fy), float(cx), float(cy), int(width), int(height))
    except ValueError as err:
        raise ValueError(f"camera file {path.name}: {err}") from None


def read_camera_file(path: str | os.PathLike) -> Intrinsics:
    """Intrinsics from a .yaml/.yml (ROS camera_info) or .json (RealSense, Open3D) file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"camera file {path} not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # PyYAML (installed with gradio); only camera files need it

            # OpenCV's FileStorage YAML starts with a %YAML:1.0 directive PyYAML refuses
            data = yaml.safe_load(text.replace("%YAML:1.0", "", 1))
    except Exception as err:  # json.JSONDecodeError, yaml.YAMLError: the file is not what it claims
        raise ValueError(f"camera file {path.name} is not valid {path.suffix[1:].upper()}: {err}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"camera file {path.name} holds a {type(data).__name__}, not named camera values")
    return intrinsics_from_mapping(data, path)


# ---------------------------------------------------------------------------------------------
# The camera of one frame


def _fit(cam: Intrinsics, width: int, height: int) -> Intrinsics | None:
    """`cam` at the frame's size: itself, or scaled where one size is the other times one integer
    along both axes (2x2 binning, half or double resolution); None otherwise."""
    w, h = cam.width_px, cam.height_px
    if (w, h) == (width, height):
        return cam
    down = w % width == 0 and h % height == 0 and w // width == h // height
    up = width % w == 0 and height % h == 0 and width // w == height // h
    return cam.scaled(width / w) if down or up else None


def camera_for_frame(
    camera: str | os.PathLike | Intrinsics,
    depth_shape: tuple[int, int],
    custom: tuple[float, float, float, float] | None = None,
) -> Intrinsics:
    """The camera of an (H, W) frame: a preset name (`PRESETS`), a camera file, an Intrinsics, or
    "custom" with `custom` = (fx, fy, cx, cy) px at the frame's size.

    A preset or file must match the frame's size, or the frame must be an exact multiple of it (its
    intrinsics are then scaled, `Intrinsics.scaled`). Raises ValueError saying what to change.
    """
    height, width = depth_shape
    if isinstance(camera, str) and camera == CUSTOM:
        if custom is None:
            raise ValueError("a custom camera needs fx, fy, cx, cy")
        try:  # the app's number boxes send None when cleared
            fx, fy, cx, cy = (float(v) for v in custom)
        except (TypeError, ValueError):
            raise ValueError(f"a custom camera needs four numbers fx, fy, cx, cy, got {custom}") from None
        if not np.isfinite([fx, fy, cx, cy]).all():
            raise ValueError(
                f"custom camera fx, fy, cx, cy must be finite, got {fx:g}, {fy:g}, {cx:g}, {cy:g}"
            )
        if not (fx > 0 and fy > 0):
            raise ValueError(
                f"custom camera focal lengths fx and fy must be > 0 px, got fx={fx:g}, fy={fy:g}"
            )
        return Intrinsics(fx, fy, cx, cy, width, height)
    if isinstance(camera, Intrinsics):
        label, modes = "given", (camera,)
    elif isinstance(camera, str) and camera in PRESETS:
        label, modes = PRESETS[camera].label, PRESETS[camera].modes
    elif Path(camera).suffix.lower() in CAMERA_FILE_SUFFIXES:
        label, modes = f"file {Path(camera).name}", (read_camera_file(camera),)
    else:
        raise ValueError(
            f"unknown camera {str(camera)!r}; expected one of {sorted(PRESETS)}, '{CUSTOM}' or a camera "
            f"file ({', '.join(CAMERA_FILE_SUFFIXES)})"
        )
    for mode in modes:
        if (fitted := _fit(mode, width, height)) is not None:
            return fitted
    sizes = " or ".join(m.size for m in modes)
    raise ValueError(
        f"the frame is {width}x{height} px but the {label} camera is {sizes} (or an exact multiple, "
        "such as 2x2 binning); choose the matching camera, give the device's own intrinsics as a camera "
        "file, or enter a custom one"
    )


# ---------------------------------------------------------------------------------------------
# uvd <-> xyz


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
