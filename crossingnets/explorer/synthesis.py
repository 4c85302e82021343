"""Analysis by synthesis of an uploaded frame: the crop the network saw beside the generator's crop
from the estimated latent, their difference in mm, and, where the frame has labels, the error of
each joint.

Pure functions for the upload tab (`upload.PoseResult` holds both crops): the input and the
generated crop share one colour range, so equal colours are equal depths; the difference
(generated - input, mm) is diverging, zero white, and the pixels only one of them calls hand are
grey (light: the generator missed hand the sensor saw; dark: it drew hand where there is none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from crossingnets.explorer.figures import (
    ColourScale,
    Figure,
    colour_bar,
    crop_scale,
    crop_to_mm,
    depth_picture,
    depth_range_mm,
)
from crossingnets.hand.conventions import FINGER_COLORS, Convention

DIFFERENCE_COLOURS = ColourScale(
    name="RdBu", reverse=True, title="gen - input (mm)"
)  # red: generated farther
DIFFERENCE_LIMIT_MM = 40.0  # the difference's colour range is +- this
MISSED_RGB = (200, 200, 200)  # hand in the input only
EXTRA_RGB = (90, 90, 90)  # hand in the generated crop only


@dataclass(frozen=True)
class Difference:
    mm: np.ndarray  # (S, S) generated - input depth, NaN where either has no hand
    missed: np.ndarray  # (S, S) bool: hand in the input only
    extra: np.ndarray  # (S, S) bool: hand in the generated crop only

    @property
    def iou(self) -> float:
        """Intersection over union of the two silhouettes."""
        both = np.isfinite(self.mm).sum()
        return float(both / max(both + self.missed.sum() + self.extra.sum(), 1))

    @property
    def mean_abs_mm(self) -> float:
        """Mean |difference| where both are hand (NaN if nowhere)."""
        d = self.mm[np.isfinite(self.mm)]
        return float(np.abs(d).mean()) if d.size else float("nan")


def crop_difference(input_crop: np.ndarray, generated_crop: np.ndarray, cube_mm: float) -> Difference:
    """Two (S, S) crops (background +1; `figures.generated_to_crop` for the generator's) -> their
    difference in mm and where their silhouettes disagree."""
    a, b = crop_to_mm(input_crop, cube_mm), crop_to_mm(generated_crop, cube_mm)
    if a.shape != b.shape:
        raise ValueError(f"crops must have one shape, got {a.shape} and {b.shape}")
    hand_a, hand_b = np.isfinite(a), np.isfinite(b)
    return Difference(mm=b - a, missed=hand_a & ~hand_b, extra=hand_b & ~hand_a)


def difference_picture(diff: Difference, scale: int, limit_mm: float = DIFFERENCE_LIMIT_MM) -> Image.Image:
    """The difference in colour (`scale` times larger), silhouette disagreement in grey, with its bar."""
    rgb = DIFFERENCE_COLOURS.rgb(diff.mm, -limit_mm, limit_mm)
    rgb[diff.missed], rgb[diff.extra] = MISSED_RGB, EXTRA_RGB
    side = rgb.shape[0] * scale
    image = Image.fromarray(rgb).resize((side, side), Image.NEAREST)
    return colour_bar(image, -limit_mm, limit_mm, DIFFERENCE_COLOURS)


@dataclass(frozen=True)
class SynthesisView:
    input_image: Image.Image  # the crop the network saw, in the depth colours, with its bar
    generated_image: Image.Image  # Gen(Ali(z)) of the estimated latent, same colours
    difference_image: Image.Image  # generated - input, mm
    summary: str  # silhouette IoU and mean |difference|, Markdown


def synthesis_view(input_crop: np.ndarray, generated_crop: np.ndarray, cube_mm: float) -> SynthesisView:
    """The three pictures of analysis by synthesis and what they add up to."""
    scale = crop_scale(np.shape(input_crop)[-1])
    a, b = crop_to_mm(input_crop, cube_mm), crop_to_mm(generated_crop, cube_mm)
    lo, hi = depth_range_mm(np.stack([a, b]))
    diff = crop_difference(input_crop, generated_crop, cube_mm)
    summary = (
        f"generated vs input: silhouettes overlap {100 * diff.iou:.0f} % (IoU); where both are hand the "
        f"depth differs by {diff.mean_abs_mm:.1f} mm on average · light grey: hand the generator missed, "
        "dark grey: hand it added"
    )
    return SynthesisView(
        input_image=depth_picture(a, lo, hi, scale),
        generated_image=depth_picture(b, lo, hi, scale),
        difference_image=difference_picture(diff, scale),
        summary=summary,
    )


def joint_errors_mm(predicted_xyz: np.ndarray, true_xyz: np.ndarray) -> np.ndarray:
    """(J, 3) estimate and labels in the same frame and convention (mm) -> (J,) 3D errors."""
    p, t = np.asarray(predicted_xyz, np.float64), np.asarray(true_xyz, np.float64)
    if p.shape != t.shape or p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"estimate and labels must both be (J, 3), got {p.shape} and {t.shape}")
    return np.linalg.norm(p - t, axis=1)


def joint_error_figure(errors_mm: np.ndarray, convention: Convention) -> Figure:
    """A bar per joint (coloured by finger) of its error in mm, the mean as a dashed line."""
    errors = np.asarray(errors_mm, np.float64)
    if errors.shape != (convention.num_joints,):
        raise ValueError(
            f"need one error per {convention.name.upper()} joint ({convention.num_joints}), got {errors.shape}"
        )
    mean = float(errors.mean())
    return {
        "data": [
            {
                "type": "bar",
                "x": list(convention.joint_names),
                "y": np.round(errors, 1).tolist(),
                "marker": {"color": [FINGER_COLORS[f] for f in convention.fingers]},
                "hovertemplate": "%{x}: %{y:.1f} mm<extra></extra>",
                "name": "joint error",
            }
        ],
        "layout": {
            "title": {"text": f"error per joint (mean {mean:.1f} mm)"},
            "yaxis": {"title": {"text": "3D error (mm)"}, "rangemode": "tozero"},
            "shapes": [
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": mean,
                    "y1": mean,
                    "line": {"dash": "dash", "color": "#888888"},
                }
            ],
            "margin": {"l": 60, "r": 10, "t": 40, "b": 90},
            "height": 320,
        },
    }
