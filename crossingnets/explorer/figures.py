"""What every tab of the explorer draws: Plotly figures as plain dicts, and depth-crop images.

Figures are plain figure dicts (JSON-ready, no validation cost).

Building `plotly.graph_objects.Figure`s validates every property and costs ~40 ms for a skeleton;
a dict that follows Plotly's JSON schema costs well under 1 ms, which keeps a slider move fast.
`plotly.graph_objects.Figure(fig)` accepts every dict made here (the tests check it).

Display axes: camera-frame joints (x right, y down, z forward, mm) are shown with x to the right,
depth z going into the screen and -y up, so a hand looks upright as the sensor saw it. Every
figure has fixed axis ranges, a fixed camera and a constant `uirevision`, so a new pose (a slider
move, an animation frame) never makes the view jump, and a view the user rotated is kept.

Crop images: a (S, S) crop in [-1, 1] is shown enlarged by an integer factor to about
IMAGE_SIDE_PX, near bright and background black.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PIL import Image

from crossingnets.data.preprocess import BACKGROUND
from crossingnets.draw import depth_to_gray
from crossingnets.hand.conventions import FINGER_COLORS, FINGERS, Convention

Figure = dict[str, Any]  # a Plotly figure as JSON: {"data": [...], "layout": {...}, "frames": [...]}

# Looking from behind and a little above the sensor, at the hand (scene units: ranges -> [-1, 1]).
SCENE_CAMERA = {"eye": {"x": 0.35, "y": -1.9, "z": 0.55}, "up": {"x": 0, "y": 0, "z": 1}}
AXIS_TITLES = ("x right (mm)", "depth z (mm)", "up -y (mm)")
# The generator ends in tanh, so its background never reaches +1 exactly: pixels above this are
# shown as background (a trained generator puts them at 0.99+; hands lie below 0.9).
GENERATED_BACKGROUND = 0.95
IMAGE_SIDE_PX = 256  # crops are shown enlarged to about this side (nearest neighbour)


def _display_xyz(joints_xyz: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame (x right, y down, z forward) -> display (x, z, -y), rounded to 0.1 mm."""
    j = np.asarray(joints_xyz, dtype=np.float64)
    return np.round(np.stack([j[..., 0], j[..., 2], -j[..., 1]], axis=-1), 1)


def _finger_segments(joints_display: np.ndarray, convention: Convention) -> dict[str, list[list]]:
    """Per finger, the x, y, z lists of its bones, each bone two points then a None (a line break)."""
    segments: dict[str, list[list]] = {}
    for (a, b), finger in zip(convention.bones, convention.bone_fingers(), strict=True):
        xyz = segments.setdefault(finger, [[], [], []])
        for axis in range(3):
            xyz[axis] += [float(joints_display[a, axis]), float(joints_display[b, axis]), None]
    return segments


def skeleton_traces(joints_xyz: np.ndarray, convention: Convention) -> list[dict[str, Any]]:
    """(J, 3) camera-frame joints (mm) -> one Scatter3d trace per finger, in `FINGERS` order.

    The trace list always has one entry per finger of `FINGERS` (empty when the convention has no
    bone of that finger), so animation frames can address traces by index.
    """
    if joints_xyz.shape != (convention.num_joints, 3):
        raise ValueError(
            f"joints must be ({convention.num_joints}, 3) for {convention.name}, got {joints_xyz.shape}"
        )
    segments = _finger_segments(_display_xyz(joints_xyz), convention)
    traces = []
    for finger in FINGERS:
        x, y, z = segments.get(finger, [[], [], []])
        color = FINGER_COLORS[finger]
        traces.append(
            {
                "type": "scatter3d",
                "mode": "lines+markers",
                "name": finger,
                "x": x,
                "y": y,
                "z": z,
                "line": {"color": color, "width": 8},
                "marker": {"color": color, "size": 4},
                "hoverinfo": "name",
            }
        )
    return traces


def scene_layout(center_xyz: np.ndarray, half_range_mm: float) -> dict[str, Any]:
    """A 3D scene with equal, fixed axis ranges centre +- `half_range_mm` (camera-frame centre, mm)."""
    center = _display_xyz(center_xyz)
    axes = {
        f"{name}axis": {
            "title": {"text": title},
            "range": [float(c - half_range_mm), float(c + half_range_mm)],
            "autorange": False,
        }
        for name, title, c in zip("xyz", AXIS_TITLES, center, strict=True)
    }
    return {**axes, "aspectmode": "cube", "camera": SCENE_CAMERA}


def skeleton_figure(
    joints_xyz: np.ndarray,
    convention: Convention,
    center_xyz: np.ndarray,
    half_range_mm: float,
    title: str = "",
) -> Figure:
    """A rotatable 3D skeleton, bones coloured per finger, axes in mm around `center_xyz`."""
    return {
        "data": skeleton_traces(np.asarray(joints_xyz), convention),
        "layout": {
            "title": {"text": title},
            "scene": scene_layout(center_xyz, half_range_mm),
            "uirevision": "skeleton",  # keep the user's rotation across updates
            "margin": {"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
            "legend": {"orientation": "h"},
            "height": 420,
        },
    }


def _image_trace(png_data_uri: str) -> dict[str, Any]:
    return {"type": "image", "source": png_data_uri, "xaxis": "x", "yaxis": "y", "hoverinfo": "skip"}


def walk_figure(
    joints_xyz: np.ndarray,
    depth_png_uris: list[str],
    convention: Convention,
    half_range_mm: float,
    frame_ms: int = 150,
) -> Figure:
    """An animated walk: the 3D skeleton (left) and the generated depth map (right) of each step.

    joints_xyz: (T, J, 3) mm relative to the crop centre; depth_png_uris: T PNG data URIs.
    Plotly frames, a play/pause menu and a step slider; fixed ranges and camera, so nothing jumps.
    """
    joints_xyz = np.asarray(joints_xyz)
    steps = len(joints_xyz)
    if steps == 0 or len(depth_png_uris) != steps:
        raise ValueError(
            f"a walk needs as many depth maps as poses (>= 1), got {len(depth_png_uris)} and {steps}"
        )
    frames = [
        {
            "name": str(t),
            "data": [*skeleton_traces(joints_xyz[t], convention), _image_trace(depth_png_uris[t])],
        }
        for t in range(steps)
    ]
    scene = scene_layout(np.zeros(3), half_range_mm)
    scene["domain"] = {"x": [0.0, 0.55], "y": [0.12, 1.0]}
    play = {
        "frame": {"duration": frame_ms, "redraw": True},
        "fromcurrent": True,
        "transition": {"duration": 0},
    }
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    layout = {
        "scene": scene,
        "xaxis": {"domain": [0.6, 1.0], "visible": False},
        "yaxis": {"domain": [0.12, 1.0], "visible": False, "scaleanchor": "x"},
        "uirevision": "walk",
        "margin": {"l": 0, "r": 0, "t": 10, "b": 0},
        "legend": {"orientation": "h", "y": 1.08},
        "height": 480,
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "buttons": [
                    {"label": "Play", "method": "animate", "args": [None, play]},
                    {"label": "Pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        "sliders": [
            {
                "active": 0,
                "x": 0.15,
                "len": 0.85,
                "y": 0.0,
                "yanchor": "top",
                "currentvalue": {"prefix": "step "},
                "steps": [
                    {
                        "label": str(t),
                        "method": "animate",
                        "args": [[str(t)], {**pause, "frame": {"redraw": True}}],
                    }
                    for t in range(steps)
                ],
            }
        ],
    }
    return {"data": frames[0]["data"], "layout": layout, "frames": frames}


def smoothness_figure(latent_distance: np.ndarray, smoothness_distance: np.ndarray) -> Figure:
    """Per step of a walk, the smoothness head's distance |smo(x_t, x_t+1)| against |z_t+1 - z_t|.

    The L_smo constraint (paper Sec. 3.3) asks smo(a, b) = z_a - z_b, so a trained model puts the
    points on the dashed diagonal.
    """
    lat = np.asarray(latent_distance, dtype=np.float64)
    smo = np.asarray(smoothness_distance, dtype=np.float64)
    if lat.shape != smo.shape or lat.ndim != 1:
        raise ValueError(f"distances must be two equal 1-D arrays, got {lat.shape} and {smo.shape}")
    top = float(max(lat.max(initial=0.0), smo.max(initial=0.0), 1e-6)) * 1.05
    steps = np.arange(1, len(lat) + 1)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "consecutive steps",
                "x": np.round(lat, 4).tolist(),
                "y": np.round(smo, 4).tolist(),
                "marker": {
                    "color": steps.tolist(),
                    "colorscale": "Viridis",
                    "size": 9,
                    "showscale": True,
                    "colorbar": {"title": {"text": "step"}},
                },  # fmt: skip
                "text": [f"step {t - 1} -> {t}" for t in steps],
                "hovertemplate": "%{text}<br>latent %{x:.3f}<br>smoothness %{y:.3f}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "L_smo target (equal)",
                "x": [0.0, top],
                "y": [0.0, top],
                "line": {"dash": "dash", "color": "#888888"},
            },
        ],
        "layout": {
            "xaxis": {"title": {"text": "latent distance |z_t+1 - z_t|"}, "range": [0, top]},
            "yaxis": {"title": {"text": "smoothness head |smo(x_t, x_t+1)|"}, "range": [0, top]},
            "margin": {"l": 60, "r": 10, "t": 30, "b": 50},
            "legend": {
                "x": 0.01,
                "y": 0.99,
                "xanchor": "left",
                "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.7)",
            },
            "height": 360,
        },
    }


def figure_page(fig: Figure, plotly_js_url: str) -> str:
    """A full HTML page showing `fig` (frames and buttons included), loading plotly.js from a URL."""
    import plotly.io as pio  # imported here: only a walk needs it

    return pio.to_html(
        fig,
        include_plotlyjs=plotly_js_url,
        full_html=True,
        auto_play=False,
        validate=False,
        default_height="100%",
    )


def iframe(page: str, height_px: int = 500) -> str:
    """An <iframe> holding an HTML page (srcdoc), for a page whose scripts must run (animations)."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{height_px}px;border:0" '
        'title="walk animation"></iframe>'
    )


# ---------------------------------------------------------------------------------------------
# Crop images


def crop_scale(crop_px: int) -> int:
    """Integer enlargement that shows a (S, S) crop at about IMAGE_SIDE_PX."""
    return max(1, IMAGE_SIDE_PX // crop_px)


def generated_to_crop(generated: np.ndarray) -> np.ndarray:
    """(..., S, S) generator output in (-1, 1) -> crop with its background exactly at +1."""
    out = np.array(generated, dtype=np.float32)
    out[out > GENERATED_BACKGROUND] = BACKGROUND
    return out


def crop_image(crop: np.ndarray) -> Image.Image:
    """(S, S) normalised crop -> enlarged greyscale RGB image, near bright, background black."""
    gray = depth_to_gray(crop)
    side = gray.shape[0] * crop_scale(gray.shape[0])
    return Image.fromarray(gray).convert("RGB").resize((side, side), Image.NEAREST)
