"""Plotly figures of evaluation results: success-rate curves and per-joint errors.

Pure functions first (summaries -> figure), then `save_figure` (html, or png through kaleido and
a locally installed Chromium; a browser is never downloaded).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from crossingnets.files import atomic_output
from crossingnets.metrics import ErrorSummary

_COLORS = qualitative.Plotly  # one colour per method, the same in both panels
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PNG_SIZE_PX = (1400, 560)  # width, height of exported PNGs: two panels side by side


def _color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def add_success_rate_traces(fig: go.Figure, summaries: Mapping[str, ErrorSummary], **where) -> None:
    """One line per method: % of frames whose worst joint error is within each threshold."""
    for i, (name, s) in enumerate(summaries.items()):
        fig.add_trace(
            go.Scatter(
                x=s.thresholds_mm,
                y=100.0 * s.success_rate,
                mode="lines",
                name=f"{name} ({s.mean_error_mm:.2f} mm)",
                legendgroup=name,
                line={"color": _color(i), "width": 2},
                hovertemplate="%{x:.0f} mm: %{y:.1f}% of frames<extra>" + name + "</extra>",
            ),
            **where,
        )


def add_per_joint_traces(
    fig: go.Figure, summaries: Mapping[str, ErrorSummary], joint_names: tuple[str, ...], **where
) -> None:
    """Grouped bars per method: mean error of each joint, then the mean over joints."""
    labels = [*joint_names, "mean"]
    for i, (name, s) in enumerate(summaries.items()):
        if len(s.per_joint_error_mm) != len(joint_names):
            raise ValueError(f"{name}: {len(s.per_joint_error_mm)} joints, expected {len(joint_names)}")
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[*s.per_joint_error_mm.tolist(), s.mean_error_mm],
                name=name,
                legendgroup=name,
                showlegend=False,
                marker_color=_color(i),
                hovertemplate="%{x}: %{y:.2f} mm<extra>" + name + "</extra>",
            ),
            **where,
        )


def success_rate_figure(summaries: Mapping[str, ErrorSummary], title: str = "") -> go.Figure:
    fig = go.Figure()
    add_success_rate_traces(fig, summaries)
    fig.update_layout(title=title, template="plotly_white")
    style_success_axes(fig)
    return fig


def per_joint_error_figure(
    summaries: Mapping[str, ErrorSummary], joint_names: tuple[str, ...], title: str = ""
) -> go.Figure:
    fig = go.Figure()
    add_per_joint_traces(fig, summaries, joint_names)
    fig.update_layout(title=title, template="plotly_white", barmode="group", showlegend=True)
    fig.update_traces(showlegend=True)
    fig.update_yaxes(title_text="mean error (mm)")
    return fig


def style_success_axes(fig: go.Figure, **where) -> None:
    fig.update_xaxes(title_text="maximum allowed distance to ground truth (mm)", range=[0, 80], **where)
    fig.update_yaxes(title_text="frames with all joints within distance (%)", range=[0, 100], **where)


def evaluation_figure(
    summaries: Mapping[str, ErrorSummary], joint_names: tuple[str, ...], title: str = ""
) -> go.Figure:
    """Success-rate curves (left) and per-joint mean errors (right) of all methods, one colour each."""
    if not summaries:
        raise ValueError("nothing to plot: no method results")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.4, 0.6],
        subplot_titles=("success rate", "mean error per joint"),
        horizontal_spacing=0.08,
    )
    add_success_rate_traces(fig, summaries, row=1, col=1)
    add_per_joint_traces(fig, summaries, joint_names, row=1, col=2)
    style_success_axes(fig, row=1, col=1)
    fig.update_xaxes(tickangle=-45, row=1, col=2)
    fig.update_yaxes(title_text="mean error (mm)", row=1, col=2)
    fig.update_layout(
        title=title,
        template="plotly_white",
        barmode="group",
        legend={"orientation": "h", "y": -0.3, "x": 0.0},
        margin={"b": 150},
    )
    return fig


def find_browser() -> str:
    """Path of a local Chromium for kaleido: $BROWSER_PATH, else the first on PATH."""
    path = os.environ.get("BROWSER_PATH") or next(filter(None, map(shutil.which, _BROWSERS)), None)
    if not path or not Path(path).exists():
        raise RuntimeError(
            "PNG export needs Chromium (e.g. Debian's `chromium`) on PATH or in $BROWSER_PATH; "
            "write .html instead"
        )
    return path


def save_figure(fig: go.Figure, path: str | os.PathLike) -> Path:
    """Write `fig` as .html (self-contained) or .png, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".png"):
        raise ValueError(f"cannot write {path}: plots are written as .html or .png")
    if suffix == ".png":
        # kaleido (through choreographer) reads BROWSER_PATH; point it at the local Chromium so
        # it never tries to fetch one.
        os.environ["BROWSER_PATH"] = find_browser()
        # Their INFO lines narrate every browser step; keep our log about our work.
        for noisy in ("kaleido", "choreographer"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger(noisy).level))
    with atomic_output(path) as tmp:
        if suffix == ".html":
            fig.write_html(tmp, include_plotlyjs=True, full_html=True)
        else:
            width, height = PNG_SIZE_PX
            fig.write_image(tmp, format="png", width=width, height=height, scale=1)
    return path
