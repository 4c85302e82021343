"""Validation error against training wall time, from a run folder's metrics.jsonl, or from a
`crossingnets pipeline` folder (its stores and stages on one clock).

Reads the trainer's lines (`stage`, `elapsed_s`, `val_mm`, maybe `val_vae_mm`, `gen_iou`) or a
prototype's (`phase` for `stage`, `vae_mm` for `val_vae_mm`); lines without `val_mm` (losses only)
count towards the wall time but draw no point. A resumed run may repeat lines: a line whose
`elapsed_s` goes back in time replaces every earlier line at or after it.

Plots val_mm (and the VAE's reconstruction error where logged) against minutes, each stage's
stretch of time shaded and named, and a line at --target mm. Drawn with PIL (no matplotlib here,
and plotly's PNG export needs a Chromium).

    python benchmarks/time_to_accuracy.py --run runs/release [--out docs/time_to_accuracy.png]

A pipeline's stages each start their own clock; here each is shifted by the wall time the pipeline
recorded for the steps before it (rendering its stores shows as one `data` stretch, a stage's
start-up and final bookkeeping count), and a stage still running is drawn as far as it got.

Prints one JSON line: final val_mm, total wall time, first time at or below the target (or null).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, ImageDraw

from crossingnets.draw import font
from crossingnets.files import atomic_output
from crossingnets.pipeline import STATE_FILE

METRICS_FILE = "metrics.jsonl"
TARGET_MM = 12.0  # issue 11: synthetic test <= 12 mm
SIZE_PX = (1200, 640)
_STAGE_FILLS = [(222, 235, 247), (254, 230, 206), (229, 245, 224), (239, 237, 245), (255, 247, 188)]
VAL_RGB, VAE_RGB, TARGET_RGB = (31, 119, 180), (255, 127, 14), (214, 39, 40)


@dataclass(frozen=True)
class Record:
    """One metrics line, keys normalised."""

    elapsed_s: float
    stage: str
    val_mm: float | None
    vae_mm: float | None
    gen_iou: float | None


def _number(d: dict, *keys: str) -> float | None:
    for k in keys:
        if isinstance(d.get(k), int | float):
            return float(d[k])
    return None


def parse_records(lines: list[str], source: str = "metrics") -> list[Record]:
    """JSON lines -> Records in training order, a resume's repeated stretch replaced.

    Blank lines are skipped; a line that is not a JSON object with `elapsed_s` raises ValueError
    naming `source` and the line."""
    out: list[Record] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source} line {number}: not JSON ({err})") from None
        elapsed = _number(d, "elapsed_s") if isinstance(d, dict) else None
        if elapsed is None:
            raise ValueError(f"{source} line {number}: no numeric elapsed_s")
        rec = Record(
            elapsed_s=elapsed,
            stage=str(d.get("stage", d.get("phase", "?"))),
            val_mm=_number(d, "val_mm"),
            vae_mm=_number(d, "val_vae_mm", "vae_mm"),
            gen_iou=_number(d, "gen_iou"),
        )
        while out and out[-1].elapsed_s >= rec.elapsed_s:  # resumed from an earlier checkpoint
            out.pop()
        out.append(rec)
    return out


def read_records(run: Path) -> list[Record]:
    path = run / METRICS_FILE if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"no {METRICS_FILE} at {path}")
    return parse_records(path.read_text(encoding="utf-8").splitlines(), str(path))


def pipeline_records(folder: Path) -> list[Record]:
    """The records of a pipeline's stages on one clock (see the module's docstring)."""
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    stages = [s["stage"] for s in state["settings"]["config"]["stages"]]
    out: list[Record] = []
    t0 = 0.0
    for name in [*state["steps"], *(s for s in stages if s not in state["steps"])]:
        if name.startswith("data/"):
            t0 += state["steps"][name]["wall_s"]
            out.append(Record(t0, "data", None, None, None))
            continue
        if not (folder / name / METRICS_FILE).is_file():
            break  # a stage not started yet
        out += [replace(r, elapsed_s=t0 + r.elapsed_s) for r in read_records(folder / name)]
        if name not in state["steps"]:
            break  # the stage running now
        t0 += state["steps"][name]["wall_s"]
        out.append(Record(t0, name, None, None, None))
    return out


def stage_spans(records: list[Record]) -> list[tuple[str, float, float]]:
    """(stage, start s, end s) of each stretch of consecutive lines of one stage; a stretch starts
    where the previous one ended (a line is written at the end of the work it reports)."""
    spans: list[tuple[str, float, float]] = []
    for r in records:
        if spans and spans[-1][0] == r.stage:
            spans[-1] = (r.stage, spans[-1][1], r.elapsed_s)
        else:
            spans.append((r.stage, spans[-1][2] if spans else 0.0, r.elapsed_s))
    return spans


def time_to_target(records: list[Record], target_mm: float) -> float | None:
    """Elapsed seconds of the first validation at or below target_mm, or None."""
    return next((r.elapsed_s for r in records if r.val_mm is not None and r.val_mm <= target_mm), None)


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _dashed(
    draw: ImageDraw.ImageDraw, xy: list[tuple[float, float]], fill, width: int, dash: int = 8
) -> None:
    for (x0, y0), (x1, y1) in zip(xy, xy[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        for s in range(0, int(length), 2 * dash):
            a, b = s / max(length, 1e-9), min(s + dash, length) / max(length, 1e-9)
            draw.line(
                [(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))],
                fill,
                width,
            )


def figure(records: list[Record], target_mm: float, title: str = "") -> Image.Image:
    """Validation error (mm) against wall time (min): stages shaded, the target as a line."""
    w, h = SIZE_PX
    left, right, top, bottom = 80, 30, 60, 70
    img = Image.new("RGB", SIZE_PX, "white")
    draw = ImageDraw.Draw(img)
    big, small = font(16), font(13)
    points = [r for r in records if r.val_mm is not None]
    t_max = max((r.elapsed_s for r in records), default=60.0) / 60.0
    values = [r.val_mm for r in points] + [r.vae_mm for r in points if r.vae_mm is not None] + [target_mm]
    y_max = max(values) * 1.08
    x_ticks, y_ticks = _nice_ticks(0.0, max(t_max, 1e-3)), _nice_ticks(0.0, y_max)
    x_hi, y_hi = max(x_ticks[-1], t_max), max(y_ticks[-1], y_max)

    def xy(t_min: float, mm: float) -> tuple[float, float]:
        return left + t_min / x_hi * (w - left - right), h - bottom - mm / y_hi * (h - top - bottom)

    for k, (stage, t0, t1) in enumerate(stage_spans(records)):
        (x0, y0), (x1, _) = xy(t0 / 60, y_hi), xy(t1 / 60, 0)
        draw.rectangle([x0, y0, x1, h - bottom], fill=_STAGE_FILLS[k % len(_STAGE_FILLS)])
        draw.text((x0 + 4, y0 + 4), stage, fill=(80, 80, 80), font=small)
    for t in x_ticks:
        x, _ = xy(t, 0)
        draw.line([(x, h - bottom), (x, h - bottom + 5)], fill="black")
        draw.text((x, h - bottom + 8), f"{t:g}", fill="black", font=small, anchor="mt")
    for v in y_ticks:
        _, y = xy(0, v)
        draw.line([(left, y), (w - right, y)], fill=(225, 225, 225))
        draw.line([(left - 5, y), (left, y)], fill="black")
        draw.text((left - 8, y), f"{v:g}", fill="black", font=small, anchor="rm")
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    draw.text(
        ((left + w - right) / 2, h - 22), "training wall time (min)", fill="black", font=big, anchor="mm"
    )
    draw.text((10, top - 24), "mean joint error (mm)", fill="black", font=big)
    draw.text((left, 12), title, fill="black", font=big)
    _dashed(draw, [xy(0, target_mm), xy(x_hi, target_mm)], TARGET_RGB, 2)
    for series, rgb in ((lambda r: r.val_mm, VAL_RGB), (lambda r: r.vae_mm, VAE_RGB)):
        pts = [xy(r.elapsed_s / 60, series(r)) for r in points if series(r) is not None]
        if len(pts) > 1:
            draw.line(pts, fill=rgb, width=2, joint="curve")
        for x, y in pts:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=rgb)
    legend = [(VAL_RGB, "validation (val_mm)"), (TARGET_RGB, f"target {target_mm:g} mm")]
    if any(r.vae_mm is not None for r in points):
        legend.insert(1, (VAE_RGB, "pose VAE reconstruction"))
    lx = w - right - 230
    for k, (rgb, text) in enumerate(legend):
        y = top + 40 + 20 * k  # below the stage names
        draw.line([(lx, y), (lx + 24, y)], fill=rgb, width=3)
        draw.text((lx + 32, y), text, fill="black", font=small, anchor="lm")
    return img


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--run", type=Path, required=True, help=f"run folder (or its {METRICS_FILE}), or a pipeline folder"
    )
    p.add_argument("--out", type=Path, default=Path("docs/time_to_accuracy.png"), help="figure (PNG)")
    p.add_argument("--target", type=float, default=TARGET_MM, help="validation error to reach, mm")
    return p


def main(args: argparse.Namespace) -> dict:
    records = pipeline_records(args.run) if (args.run / STATE_FILE).is_file() else read_records(args.run)
    points = [r for r in records if r.val_mm is not None]
    if not points:
        raise ValueError(f"{args.run}: no line with val_mm yet")
    reached = time_to_target(records, args.target)
    title = f"{args.run}: validation error vs wall time"
    with atomic_output(args.out) as tmp:
        figure(records, args.target, title).save(tmp, format="PNG")
    last = points[-1]
    result = {
        "benchmark": "time_to_accuracy",
        "run": str(args.run),
        "figure": str(args.out),
        "target_mm": args.target,
        "final_val_mm": last.val_mm,
        "final_vae_mm": last.vae_mm,
        "final_gen_iou": last.gen_iou,
        "final_stage": records[-1].stage,
        "total_wall_s": records[-1].elapsed_s,
        "time_to_target_s": reached,
        "stages": [{"stage": s, "start_s": a, "end_s": b} for s, a, b in stage_spans(records)],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
