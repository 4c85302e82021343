"""What every tab of the explorer draws: Plotly figures as plain dicts, and depth-crop images.

Figures are plain figure dicts (JSON-ready, no validation cost).

Building `plotly.graph_objects.Figure`s validates every property and costs ~40 ms for a skeleton;
a dict that follows Plotly's JSON schema costs well under 1 ms, which keeps a slider move fast.
`plotly.graph_objects.Figure(fig)` accepts every dict made here (the tests check it).

Display axes: camera-frame joints (x right, y down, z forward, mm) are shown with x to the right,
depth z going into the screen and -y up, so a hand looks upright as the sensor saw it. Every
figure has fixed axis ranges, a fixed camera and a constant `uirevision`, so a new pose (a slider
move, an animation frame) never makes the view jump, and a view the user rotated is kept.

Depth: a crop in [-1, 1] is depth about the crop centre in units of half the cube, so
`crop_to_mm` gives mm about the centre (+ = farther). The hand is shown in 3D as that depth lifted
to points (`crop_points_mm`: the crop's orthographic inverse, the one `walk.centered_to_crop_uv`
uses, exact at the centre's depth and within a few percent over a hand), in the skeleton's scene,
and in 2D with a perceptual colour map (Viridis, near bright) and a colour bar in mm, the same
colours in both.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from crossingnets.data.preprocess import BACKGROUND, CropConfig
from crossingnets.draw import draw_skeleton, font
from crossingnets.hand.conventions import FINGER_COLORS, FINGERS, Convention

Figure = dict[str, Any]  # a Plotly figure as JSON: {"data": [...], "layout": {...}, "frames": [...]}

# Looking from behind and a little above the sensor, at the hand (scene units: ranges -> [-1, 1]).
SCENE_CAMERA = {"eye": {"x": 0.35, "y": -1.9, "z": 0.55}, "up": {"x": 0, "y": 0, "z": 1}}
AXIS_TITLES = ("x right (mm)", "depth z (mm)", "up -y (mm)")
# The generator ends in tanh, so its background never reaches +1 exactly: pixels above this are
# shown as background (a trained generator puts them at 0.99+; hands lie below 0.9).
GENERATED_BACKGROUND = 0.95
IMAGE_SIDE_PX = 256  # crops are shown enlarged to about this side (nearest neighbour)
DEPTH_COLORSCALE = "Viridis"  # perceptually uniform; reversed, so near is bright yellow
DEPTH_TITLE = "depth (mm)"  # about the crop centre, + = farther from the camera
SCENE_MARGIN_MM = 40.0  # fitted 3D axes: room around the joints for the hand's surface


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


def fitted_scene(joints_xyz: np.ndarray, margin_mm: float = SCENE_MARGIN_MM) -> tuple[np.ndarray, float]:
    """(centre (3,), half range mm) of a cube around (..., J, 3) joints (all steps of a walk), with
    `margin_mm` for the hand's surface; rounded (10 mm centre, 20 mm range) so that small moves of
    the hand keep the axes."""
    pts = np.asarray(joints_xyz, np.float64).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = np.round((lo + hi) / 20.0) * 10.0
    half = float(np.max(np.maximum(hi - center, center - lo))) + margin_mm
    return center, 20.0 * np.ceil(half / 20.0)


def in_scene(points_xyz: np.ndarray, center: np.ndarray, half_range_mm: float) -> np.ndarray:
    """The rows of (P, 3) points inside the scene cube (Plotly would draw the rest over the axes)."""
    inside = np.all(np.abs(np.asarray(points_xyz) - center) <= half_range_mm, axis=1)
    return points_xyz[inside]


def cloud_trace(
    points_xyz: np.ndarray, lo_mm: float, hi_mm: float, bar_x: float = 1.02, name: str = "generated depth"
) -> dict:
    """(P, 3) points (camera axes, mm) -> a Scatter3d of small markers coloured by their depth z
    on the 2D images' colour scale (near bright), with its colour bar in mm at `bar_x` (paper)."""
    p = np.round(_display_xyz(points_xyz)).astype(np.int64)  # whole mm: points ~5 mm apart, half the JSON
    return {
        "type": "scatter3d",
        "mode": "markers",
        "name": name,
        "x": p[:, 0].tolist(),
        "y": p[:, 1].tolist(),
        "z": p[:, 2].tolist(),
        "marker": {
            "size": 2.5,
            "opacity": 0.55,
            "color": p[:, 1].tolist(),
            "colorscale": DEPTH_COLORSCALE,
            "reversescale": True,
            "cmin": float(lo_mm),
            "cmax": float(hi_mm),
            "colorbar": {"title": {"text": DEPTH_TITLE}, "thickness": 12, "len": 0.6, "x": bar_x},
        },
        "hoverinfo": "skip",
    }


def hand_figure(
    joints_xyz: np.ndarray,
    points_xyz: np.ndarray,
    convention: Convention,
    depth_range_mm: tuple[float, float],
    title: str = "",
) -> Figure:
    """The skeleton inside the lifted depth map (both camera axes, mm), axes fitted to the hand."""
    center, half = fitted_scene(joints_xyz)
    fig = skeleton_figure(joints_xyz, convention, center, half, title)
    fig["data"].append(cloud_trace(in_scene(points_xyz, center, half), *depth_range_mm))
    fig["layout"]["height"] = 520
    return fig


def _image_trace(png_data_uri: str) -> dict[str, Any]:
    return {"type": "image", "source": png_data_uri, "xaxis": "x", "yaxis": "y", "hoverinfo": "skip"}


def skeleton_2d_traces(joints_uv: np.ndarray, convention: Convention) -> list[dict[str, Any]]:
    """(J, 2) joints in an image's pixels (pixel centres at integers) -> one Scatter trace per
    finger, in `FINGERS` order, drawn over the image on the 2D axes (x, y)."""
    uv = np.asarray(joints_uv, np.float64)[:, :2]
    segments = _finger_segments(np.round(np.column_stack([uv, np.zeros(len(uv))]), 1), convention)
    traces = []
    for finger in FINGERS:
        x, y, _ = segments.get(finger, [[], [], []])
        color = FINGER_COLORS[finger]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": finger,
                "x": x,
                "y": y,
                "xaxis": "x",
                "yaxis": "y",
                "line": {"color": color, "width": 3},
                "marker": {"color": color, "size": 5},
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
    return traces


def _changing(trace: dict[str, Any]) -> dict[str, Any]:
    """The parts of a walk's trace that change from step to step: its points, their colours, its
    image (and its type, which plotly.py needs to read the frame)."""
    out = {k: trace[k] for k in ("type", "x", "y", "z", "source") if k in trace}
    if "color" in trace.get("marker", {}) and isinstance(trace["marker"]["color"], list):
        out["marker"] = {"color": trace["marker"]["color"]}
    return out


def walk_figure(
    joints_xyz: np.ndarray,
    depth_png_uris: list[str],
    convention: Convention,
    frame_ms: int = 150,
    clouds_xyz: list[np.ndarray] | None = None,
    depth_range_mm: tuple[float, float] = (-100.0, 100.0),
    joints_uv: np.ndarray | None = None,
    image_px: int | None = None,
) -> Figure:
    """An animated walk: the 3D skeleton inside its depth points (left) and the generated depth map
    (right) of each step.

    joints_xyz: (T, J, 3) mm relative to the crop centre; depth_png_uris: T PNG data URIs;
    clouds_xyz: T (P, 3) lifted depth maps (optional), coloured over `depth_range_mm`; joints_uv:
    (T, J, 2) the joints in the depth images' pixels (optional), drawn over them as 2D bones;
    image_px: the images' side, which fixes the 2D axes (the browser enlarges a small image with
    sharp pixels). Plotly frames, a play/pause menu and a step slider; one set of axes fitted to
    the whole walk and a fixed camera, so nothing jumps.
    """
    joints_xyz = np.asarray(joints_xyz)
    steps = len(joints_xyz)
    if steps == 0 or len(depth_png_uris) != steps:
        raise ValueError(
            f"a walk needs as many depth maps as poses (>= 1), got {len(depth_png_uris)} and {steps}"
        )
    if clouds_xyz is not None and len(clouds_xyz) != steps:
        raise ValueError(f"a walk needs one point cloud per step or none, got {len(clouds_xyz)} for {steps}")
    if joints_uv is not None and len(joints_uv) != steps:
        raise ValueError(f"a walk needs 2D joints for every step or none, got {len(joints_uv)} for {steps}")
    center, half_range_mm = fitted_scene(joints_xyz)
    clouds = [
        []
        if clouds_xyz is None
        else [cloud_trace(in_scene(clouds_xyz[t], center, half_range_mm), *depth_range_mm, bar_x=0.55)]
        for t in range(steps)
    ]
    steps_data = [
        [
            *skeleton_traces(joints_xyz[t], convention),
            *clouds[t],
            _image_trace(depth_png_uris[t]),
            *([] if joints_uv is None else skeleton_2d_traces(joints_uv[t], convention)),
        ]
        for t in range(steps)
    ]
    # A frame carries only what changes (coordinates, colours, the image), merged into the traces
    # of `data` by Plotly: a third of the bytes of full traces.
    frames = [
        {"name": str(t), "data": [_changing(trace) for trace in data], "traces": list(range(len(data)))}
        for t, data in enumerate(steps_data)
    ]
    scene = scene_layout(center, half_range_mm)
    scene["domain"] = {"x": [0.0, 0.55], "y": [0.12, 1.0]}

    def image_range(down: bool) -> dict[str, Any]:
        """Fixed 2D axes over the whole image (v down), where its side is known."""
        if image_px is None:
            return {}
        edges = [-0.5, image_px - 0.5]
        return {"range": edges[::-1] if down else edges, "autorange": False}

    play = {
        "frame": {"duration": frame_ms, "redraw": True},
        "fromcurrent": True,
        "transition": {"duration": 0},
    }
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    layout = {
        "scene": scene,
        "xaxis": {"domain": [0.6, 1.0], "visible": False, **image_range(False)},
        "yaxis": {"domain": [0.12, 1.0], "visible": False, "scaleanchor": "x", **image_range(True)},
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
    return {"data": steps_data[0], "layout": layout, "frames": frames}


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
        config={"displayModeBar": False},  # its buttons would cover the legend; drag still rotates
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


# ---------------------------------------------------------------------------------------------
# Depth in mm: points and colour images


def crop_to_mm(crop: np.ndarray, cube_mm: float) -> np.ndarray:
    """(..., S, S) normalised crop (background +1) -> depth in mm about the crop centre (+ =
    farther), NaN where there is no hand."""
    crop = np.asarray(crop, np.float64)
    return np.where(crop >= BACKGROUND, np.nan, crop * (0.5 * cube_mm))


def crop_points_mm(crop: np.ndarray, cube_mm: float, stride: int = 1) -> np.ndarray:
    """(S, S) normalised crop -> (P, 3) points of its hand pixels, camera axes, mm about the crop
    centre: each pixel at its depth, on the orthographic grid of the crop (cube_mm / S per pixel);
    `stride` keeps every stride-th row and column (fewer points for animations)."""
    depth = crop_to_mm(crop, cube_mm)
    keep = np.isfinite(depth)
    keep[np.arange(keep.shape[0]) % stride != 0] = False
    keep[:, np.arange(keep.shape[1]) % stride != 0] = False
    v, u = np.nonzero(keep)
    s = depth.shape[-1]
    pitch = cube_mm / s
    return np.column_stack([(u - (s - 1) / 2) * pitch, (v - (s - 1) / 2) * pitch, depth[v, u]])


def depth_range_mm(
    depth_mm: np.ndarray, min_span_mm: float = 60.0, step_mm: float = 10.0
) -> tuple[float, float]:
    """A colour range for depth maps (any shape, NaN = no hand): their 1st-99th percentile, at least
    `min_span_mm` wide, rounded outward to `step_mm`. One range for a walk keeps its colours fixed."""
    values = np.asarray(depth_mm, np.float64)
    values = values[np.isfinite(values)]
    lo, hi = np.percentile(values, [1, 99]) if values.size else (0.0, 0.0)
    pad = max(0.0, min_span_mm - (hi - lo)) / 2
    return float(np.floor((lo - pad) / step_mm) * step_mm), float(np.ceil((hi + pad) / step_mm) * step_mm)


@functools.cache
def _lut(colorscale: str, reverse: bool) -> np.ndarray:
    """(256, 3) uint8 colours of a Plotly colour scale (reversed: index 0 is its last colour),
    interpolated linearly between its stops as Plotly does, so images and 3D points agree."""
    from plotly.colors import get_colorscale, unlabel_rgb  # imported here: only pictures need it

    stops = get_colorscale(colorscale)
    at = np.array([p for p, _ in stops])
    rgb = np.array([unlabel_rgb(c) if c.startswith("rgb") else _hex_rgb(c) for _, c in stops], np.float64)
    t = np.linspace(1.0, 0.0, 256) if reverse else np.linspace(0.0, 1.0, 256)
    return np.round(np.stack([np.interp(t, at, rgb[:, k]) for k in range(3)], axis=1)).astype(np.uint8)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


@dataclass(frozen=True)
class ColourScale:
    """How values in mm become colours: a Plotly scale, its direction and the bar's title."""

    name: str = DEPTH_COLORSCALE
    reverse: bool = True  # near (low) bright
    title: str = DEPTH_TITLE

    def rgb(
        self, values_mm: np.ndarray, lo_mm: float, hi_mm: float, background=(255, 255, 255)
    ) -> np.ndarray:
        """(...) values (NaN = none) -> (..., 3) uint8 colours over [lo, hi]."""
        d = np.asarray(values_mm, np.float64)
        t = np.clip((d - lo_mm) / max(hi_mm - lo_mm, 1e-9), 0.0, 1.0)
        out = _lut(self.name, self.reverse)[np.round(np.nan_to_num(t) * 255).astype(np.int64)]
        out[~np.isfinite(d)] = background
        return out


DEPTH_COLOURS = ColourScale()


def depth_rgb(depth_mm: np.ndarray, lo_mm: float, hi_mm: float, background=(255, 255, 255)) -> np.ndarray:
    """(..., H, W) depth mm (NaN = none) -> (..., H, W, 3) uint8 colours over [lo, hi], near bright."""
    return DEPTH_COLOURS.rgb(depth_mm, lo_mm, hi_mm, background)


def depth_picture(
    depth_mm: np.ndarray, lo_mm: float, hi_mm: float, scale: int, bar: bool = True
) -> Image.Image:
    """(S, S) depth mm -> RGB image `scale` times larger, with a colour bar in mm on the right."""
    rgb = depth_rgb(depth_mm, lo_mm, hi_mm)
    side = rgb.shape[0] * scale
    image = Image.fromarray(rgb).resize((side, side), Image.NEAREST)
    return colour_bar(image, lo_mm, hi_mm) if bar else image


def colour_bar(
    image: Image.Image, lo_mm: float, hi_mm: float, scale: ColourScale = DEPTH_COLOURS
) -> Image.Image:
    """`image` with a vertical colour bar on its right: high values at the top as in Plotly's
    bars, ticks in mm, titled with the scale's title."""
    bar = _colour_bar(image.size[1], float(lo_mm), float(hi_mm), scale)
    out = Image.new("RGB", (image.size[0] + bar.size[0], image.size[1]), "white")
    out.paste(image, (0, 0))
    out.paste(bar, (image.size[0], 0))
    return out


@functools.lru_cache(maxsize=64)
def _colour_bar(
    height_px: int, lo_mm: float, hi_mm: float, scale: ColourScale, width_px: int = 70
) -> Image.Image:
    """The bar alone (drawn once per size and range: text drawing costs milliseconds), at least
    `width_px` wide and as wide as its title."""
    small = text_font(11)
    width_px = max(
        width_px, int(np.ceil(ImageDraw.Draw(Image.new("1", (1, 1))).textlength(scale.title, small))) + 8
    )
    bar = Image.new("RGB", (width_px, height_px), "white")
    top, bottom = 18, max(height_px - 8, 19)  # a bar of at least one row
    ramp = np.linspace(hi_mm, lo_mm, bottom - top)[:, None].repeat(12, axis=1)
    bar.paste(Image.fromarray(scale.rgb(ramp, lo_mm, hi_mm)), (6, top))
    draw = ImageDraw.Draw(bar)
    draw.text((4, 2), scale.title, fill="black", font=small)
    for value in bar_ticks(lo_mm, hi_mm):
        y = bottom - (value - lo_mm) / max(hi_mm - lo_mm, 1e-9) * (bottom - top - 1) - 1
        draw.line([(18, y), (22, y)], fill="black")
        draw.text((25, y - 6), f"{value:+.0f}", fill="black", font=small)
    return bar


def bar_ticks(lo: float, hi: float) -> np.ndarray:
    """Round tick values (steps of 10, 20, 25, 40, 50, 100 or 200 mm) inside [lo, hi], at most 7."""
    step = next(s for s in (10.0, 20.0, 25.0, 40.0, 50.0, 100.0, 200.0) if (hi - lo) / s <= 6)
    return np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)


text_font = functools.cache(font)  # PIL loads the font file on every call otherwise


def centered_to_crop_uv(joints_mm: np.ndarray, crop: CropConfig) -> np.ndarray:
    """(..., J, 3) joints relative to the crop centre (mm) -> (..., J, 2) crop pixels.

    Orthographic: exact for points at the centre's depth, within a few percent across the cube,
    which is enough to draw the skeleton of a latent point (it has no camera) over its depth map.
    """
    half = 0.5 * crop.cube_mm
    return np.asarray(joints_mm)[..., :2] / half * (crop.crop_px / 2) + (crop.crop_px - 1) / 2


def skeleton_over_depth(
    crop: np.ndarray,
    joints_mm: np.ndarray,
    convention: Convention,
    crop_cfg: CropConfig,
    depth_range_mm: tuple[float, float],
    bar: bool = True,
) -> Image.Image:
    """A (S, S) crop in the depth colours, enlarged, with the skeleton (mm about the crop centre)
    drawn over it and a colour bar in mm. The bones are `draw_skeleton`'s, drawn on an empty
    (black) crop and laid over the colours wherever they are not black."""
    scale = crop_scale(crop_cfg.crop_px)
    depth = depth_picture(crop_to_mm(crop, crop_cfg.cube_mm), *depth_range_mm, scale, bar=False)
    empty = np.full(np.shape(crop), BACKGROUND, np.float32)
    bones = draw_skeleton(empty, centered_to_crop_uv(joints_mm, crop_cfg), convention, scale)
    mask = Image.fromarray(((np.asarray(bones).max(axis=2) > 0) * 255).astype(np.uint8))
    image = Image.composite(bones, depth, mask)
    return colour_bar(image, *depth_range_mm) if bar else image
