"""Depth units: a raw frame in mm, m, 0.1 mm, 1/8 mm or any scale -> depth in mm, checked.

Sensors store depth in their own unit (RealSense SR300/SR305: 1/8 mm, L515: 1/4 mm, most others:
mm; a `.npy` from Python is often in metres). A frame read in the wrong unit puts the hand out of
the detector's range, and the failure would say only "no hand". `to_mm` scales a frame and checks
that enough of its pixels lie where a hand can be; when none do, `DepthUnitError` says what the
values are and which units would put them in range ("values 4,739-7,266 ... if this is a RealSense
SR300/SR305 frame in 1/8 mm, choose 0.125 mm"). `sensor_frame_to_mm` does both for a frame
with its camera, as every entry point (app, `predict`, `HandPoseEstimator.predict_raw`) needs.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

from crossingnets.camera import PRESETS, Intrinsics, camera_for_frame
from crossingnets.data.preprocess import CropConfig, NoHandError, check_depth

# Named units, mm per stored unit: the choices the app offers (any other scale can be typed).
UNITS: dict[str, float] = {"mm": 1.0, "m": 1000.0, "0.1 mm": 0.1, "0.125 mm": 0.125, "0.25 mm": 0.25}
_SUFFIX_MM = {"mm": 1.0, "m": 1000.0, "cm": 10.0, "um": 1e-3, "µm": 1e-3}
_UNIT_PATTERN = re.compile(
    r"^\s*(?P<num>[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)?\s*(?:/\s*(?P<den>[0-9]*\.?[0-9]+))?\s*(?P<suffix>mm|m|cm|um|µm)?\s*$",
    re.IGNORECASE,
)

MIN_HAND_MM = 100.0  # no depth sensor used for hands measures closer (SR305, D435: 0.1-0.2 m minimum)
MIN_HAND_PIXELS = 20  # a hand 2 m from a 320x240 camera still covers a few hundred pixels

# What a frame in each unit usually is, for the message; the camera's own unit is offered first.
UNIT_HINTS: dict[float, str] = {
    1.0: "a frame in mm (Kinect, Azure Kinect, RealSense D400, Orbbec, the hand datasets)",
    0.125: "a RealSense SR300/SR305 frame in 1/8 mm",
    0.25: "a RealSense L515 frame in 1/4 mm",
    0.1: "a frame in 0.1 mm",
    1000.0: "a frame in metres",
}


class DepthUnitError(NoHandError):
    """No pixel of a frame, read in its unit, lies where a hand can be; the message names the
    units that would put it there. A NoHandError, so callers that handle 'no hand' handle it."""


def parse_depth_unit(unit: str | float) -> float:
    """A depth unit -> mm per stored unit: "mm", "m", "cm", "um", a number (mm per unit: 0.125),
    a number with a unit ("0.125 mm", "0.000125 m") or a fraction ("1/8 mm")."""
    if isinstance(unit, (int, float)) and not isinstance(unit, bool):
        scale = float(unit)
    else:
        match = _UNIT_PATTERN.match(str(unit))
        if match is None or not (match["num"] or match["suffix"]) or (match["den"] and not match["num"]):
            raise ValueError(
                f"depth unit {unit!r} is not understood; give mm, m, cm, a scale in mm per unit "
                "(0.125 for 1/8 mm) or a number with a unit (0.125 mm, 0.000125 m)"
            )
        num = float(match["num"]) if match["num"] else 1.0
        den = float(match["den"]) if match["den"] else 1.0
        scale = num / den * _SUFFIX_MM[(match["suffix"] or "mm").lower()] if den else math.inf
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"depth unit {unit!r} must be a finite scale > 0 (mm per unit)")
    return scale


def unit_label(mm_per_unit: float) -> str:
    """A scale as the app and the messages name it: 'mm', 'm', '0.125 mm'."""
    return next((name for name, v in UNITS.items() if v == mm_per_unit), f"{mm_per_unit:g} mm")


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _in_range(depth_mm: np.ndarray, max_depth_mm: float) -> int:
    return int(np.count_nonzero((depth_mm >= MIN_HAND_MM) & (depth_mm <= max_depth_mm)))


def check_hand_range(
    depth_mm: np.ndarray,
    mm_per_unit: float,
    name: str = "depth frame",
    max_depth_mm: float = CropConfig.max_depth_mm,
    camera_unit_mm: float | None = None,
) -> None:
    """Raise DepthUnitError unless MIN_HAND_PIXELS pixels of the (H, W) frame in mm (read with
    `mm_per_unit`) lie within MIN_HAND_MM..max_depth_mm, where the detector looks for a hand. The
    message gives the raw values and each unit that would put them in range, the camera's own
    unit (`camera_unit_mm`, a preset's) first."""
    if _in_range(depth_mm, max_depth_mm) >= MIN_HAND_PIXELS:
        return
    raw = depth_mm[depth_mm > 0] / mm_per_unit
    if raw.size == 0:
        raise DepthUnitError(f"{name} holds no depth: every pixel is 0 (missing), no hand in range")
    lo, hi = np.percentile(raw, [1, 99])
    order = ([camera_unit_mm] if camera_unit_mm in UNIT_HINTS else []) + list(UNIT_HINTS)
    fits = [
        u
        for u in dict.fromkeys(order)
        if u != mm_per_unit and _in_range(raw * u, max_depth_mm) >= MIN_HAND_PIXELS
    ]
    advice = (
        "; ".join(f"if this is {UNIT_HINTS[u]}, choose {unit_label(u)}" for u in fits)
        if fits
        else f"no depth unit puts them there: is a hand within {max_depth_mm / 1000:g} m of the camera?"
    )
    raise DepthUnitError(
        f"{name}: fewer than {MIN_HAND_PIXELS} pixels lie within {_fmt(MIN_HAND_MM)}-{_fmt(max_depth_mm)} mm, where a hand is looked "
        f"for (no hand in range). Its values are {_fmt(lo)}-{_fmt(hi)} (1st-99th percentile), read in "
        f"{unit_label(mm_per_unit)} as {_fmt(lo * mm_per_unit)}-{_fmt(hi * mm_per_unit)} mm: {advice}"
    )


def to_mm(
    raw: np.ndarray,
    unit: str | float = "mm",
    name: str = "depth frame",
    max_depth_mm: float = CropConfig.max_depth_mm,
    camera_unit_mm: float | None = None,
) -> np.ndarray:
    """A raw (H, W) frame in `unit` (0 = missing) -> float32 depth in mm, range-checked
    (`check_hand_range`). Raises ValueError (bad values or unit) or DepthUnitError."""
    scale = parse_depth_unit(unit)
    depth = check_depth(raw, name)
    depth = depth * np.float32(scale) if scale != 1.0 else depth
    check_hand_range(depth, scale, name, max_depth_mm, camera_unit_mm)
    return depth


def sensor_frame_to_mm(
    raw: np.ndarray,
    camera: str | os.PathLike | Intrinsics,
    custom: tuple[float, float, float, float] | None = None,
    unit: str | float = "mm",
    name: str = "depth frame",
    max_depth_mm: float = CropConfig.max_depth_mm,
) -> tuple[np.ndarray, Intrinsics]:
    """A raw (H, W) frame with its camera as the user names it (`camera_for_frame`: a preset, a
    camera file, an Intrinsics or "custom") -> (depth in mm, checked; its Intrinsics). A preset's
    own depth unit is the first one a wrong-unit message suggests."""
    cam = camera_for_frame(camera, np.shape(raw), custom)
    preset = PRESETS.get(camera) if isinstance(camera, str) else None
    return to_mm(raw, unit, name, max_depth_mm, preset.depth_unit_mm if preset else None), cam
