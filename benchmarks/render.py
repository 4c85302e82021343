"""Synthetic frames per second, pose -> finished network input: the window path beside the
full-frame path, the committed baseline and trimesh + embree ray casting, in one run.

    python benchmarks/render.py            # ~1 min on 2 idle cores; the last line is JSON

Stages, each timed over the same frames: sample poses + forward kinematics + capsules; render +
sensor effects (numba, all cores) over each frame's window only (`simulate(..., windows=True)`:
the hand's box, the frame being 0 outside it); the shared `preprocess` on each window (centre
detection + crop). The full-frame path renders into (B, H, W) frames and preprocesses whole
frames, as `--baseline-rev` did; the baseline itself (that revision's code, in a subprocess) gives
today's speed before this change. Crops of all three are compared frame by frame. Render-only
figures compare the renderer (hand alone, no sensor) with trimesh's embree ray caster on
`hand_mesh` of the same capsules, one ray per pixel of the same frame.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import trimesh
from PIL import Image, ImageDraw

from crossingnets.camera import Intrinsics, get_camera
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.draw import depth_to_gray, font
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.kinematics import hand_capsules
from crossingnets.hand.mesh import hand_mesh
from crossingnets.hand.render import render_depth
from crossingnets.hand.sampler import sample_hands
from crossingnets.hand.sensor import SceneConfig, simulate, simulate_depth

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "5cb2f33"  # the last commit before the window path (issue 14)

# The baseline's loop, run by that revision's package in a subprocess: the same seeds, chunks and
# calls as `full_frame_path` (argv: frames chunk pose_block camera crop_px cube_mm seed out.npy).
BASELINE_SCRIPT = """
import sys, time, numpy as np
from crossingnets.camera import get_camera
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.draw import depth_to_gray, font
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.kinematics import hand_capsules
from crossingnets.hand.sampler import sample_hands
from crossingnets.hand.sensor import simulate_depth
frames, chunk, block, camera, crop_px, cube, seed, out = sys.argv[1:]
frames, chunk, block, seed = int(frames), int(chunk), int(block), int(seed)
cam, cfg = get_camera(camera), CropConfig(cube_mm=float(cube), crop_px=int(crop_px))
def crops_of(depth):
    out = []
    for f in depth:
        try:
            out.append(preprocess(f, cam, cfg).depth)
        except NoHandError:
            out.append(np.full((cfg.crop_px, cfg.crop_px), np.nan, np.float32))
    return out
rng = np.random.default_rng(seed)
warm = hand_capsules(*sample_hands(np.random.default_rng(99), 2, cam))
crops_of(simulate_depth(warm, cam, np.random.default_rng(99)))
crops, t = [], time.perf_counter()
for first in range(0, frames, block):
    caps_block = hand_capsules(*sample_hands(rng, min(block, frames - first), cam))
    for i in range(0, len(caps_block.radius_mm), chunk):
        caps = Capsules(*(a[i : i + chunk] for a in caps_block))
        crops += crops_of(simulate_depth(caps, cam, rng))
print(frames / (time.perf_counter() - t))
np.save(out, np.stack(crops))
"""


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1024, help="frames through each pipeline")
    p.add_argument("--chunk", type=int, default=16, help="frames per render call")
    p.add_argument("--pose-block", type=int, default=256, help="poses sampled per call (FK is torch)")
    p.add_argument("--embree-frames", type=int, default=12, help="frames ray cast with trimesh + embree")
    p.add_argument("--camera", default="nyu", help="nyu (640x480), icvl or msra (320x240)")
    p.add_argument("--crop-px", type=int, default=64)
    p.add_argument("--cube-mm", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the baseline ('' to skip)")
    p.add_argument("--figure", type=Path, help="write the crop comparison PNG here (docs/render_windows.png)")
    return p


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def sample_capsules(rng: np.random.Generator, n: int, cam: Intrinsics) -> Capsules:
    return hand_capsules(*sample_hands(rng, n, cam))


def crop_or_nan(depth: np.ndarray, cam: Intrinsics, cfg: CropConfig, origin=None) -> np.ndarray:
    """The network input, or NaN where the frame holds no hand (kept, so frames line up)."""
    try:
        return preprocess(depth, cam, cfg, origin_px=origin).depth
    except NoHandError:
        return np.full((cfg.crop_px, cfg.crop_px), np.nan, np.float32)


def window_path(args: argparse.Namespace, cam: Intrinsics, cfg: CropConfig) -> tuple[dict, np.ndarray]:
    """Stage seconds and the crops of the window path."""
    rng = np.random.default_rng(args.seed)
    stage = {"sample_fk": 0.0, "render_sensor": 0.0, "preprocess": 0.0}
    crops = []
    for first in range(0, args.frames, args.pose_block):
        dt, block = timed(
            lambda first=first: sample_capsules(rng, min(args.pose_block, args.frames - first), cam)
        )
        stage["sample_fk"] += dt
        for i in range(0, len(block.radius_mm), args.chunk):
            caps = Capsules(*(a[i : i + args.chunk] for a in block))
            dt, sensed = timed(lambda caps=caps: simulate(caps, cam, rng, windows=True))
            stage["render_sensor"] += dt
            dt, out = timed(
                lambda s=sensed: [
                    crop_or_nan(s.window(s.depth_mm, b), cam, cfg, tuple(s.roi_px[b, :2]))
                    for b in range(len(s.roi_px))
                ]
            )
            stage["preprocess"] += dt
            crops += out
    return stage, np.stack(crops)


def full_frame_path(args: argparse.Namespace, cam: Intrinsics, cfg: CropConfig) -> tuple[float, np.ndarray]:
    """Seconds and crops of the same frames rendered as (B, H, W) frames, preprocessed whole."""
    rng = np.random.default_rng(args.seed)
    crops, t = [], time.perf_counter()
    for first in range(0, args.frames, args.pose_block):
        block = sample_capsules(rng, min(args.pose_block, args.frames - first), cam)
        for i in range(0, len(block.radius_mm), args.chunk):
            depth = simulate_depth(Capsules(*(a[i : i + args.chunk] for a in block)), cam, rng)
            crops += [crop_or_nan(f, cam, cfg) for f in depth]
    return time.perf_counter() - t, np.stack(crops)


def baseline_path(args: argparse.Namespace, folder: Path) -> tuple[float, np.ndarray] | None:
    """Frames/s and crops of `args.baseline_rev`'s package (git archive), or None without git."""
    try:
        archive = subprocess.run(
            ["git", "archive", args.baseline_rev, "crossingnets"], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    out = folder / "crops.npy"
    argv = [args.frames, args.chunk, args.pose_block, args.camera, args.crop_px, args.cube_mm, args.seed, out]
    env = {**os.environ, "PYTHONPATH": str(folder)}
    run = subprocess.run(
        [sys.executable, "-c", BASELINE_SCRIPT, *map(str, argv)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"baseline {args.baseline_rev} failed:\n{run.stderr}")
    return float(run.stdout.split()[-1]), np.load(out)


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| over frames where both hold a hand; inf if they disagree on which do."""
    hand_a, hand_b = ~np.isnan(a).any(axis=(1, 2)), ~np.isnan(b).any(axis=(1, 2))
    if not np.array_equal(hand_a, hand_b):
        return float("inf")
    return float(np.abs(a[hand_a] - b[hand_b]).max(initial=0.0))


def embree_depth(caps: Capsules, b: int, cam: Intrinsics, dirs: np.ndarray) -> np.ndarray:
    """(H, W) depth of frame b by embree: build the mesh and its BVH, cast one ray per pixel."""
    caster = trimesh.ray.ray_pyembree.RayMeshIntersector(hand_mesh(caps, b))
    loc, ray_idx, _ = caster.intersects_location(np.zeros_like(dirs), dirs, multiple_hits=False)
    depth = np.zeros(len(dirs), np.float32)
    depth[ray_idx] = loc[:, 2]
    return depth.reshape(cam.height_px, cam.width_px)


def pixel_rays(cam: Intrinsics) -> np.ndarray:
    """(H * W, 3) ray directions with unit z (the hit's parameter is its depth)."""
    u, v = np.meshgrid(np.arange(cam.width_px), np.arange(cam.height_px))
    return np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones(u.shape)], -1).reshape(-1, 3)


def comparison_figure(path: Path, cam: Intrinsics, cfg: CropConfig, frames: int = 6, seed: int = 7) -> dict:
    """Crops of the same hands by the full-frame path and the window path, their difference, and
    for scale the difference a second draw of the sensor makes (PNG at `path`); returns the mean
    absolute differences over hand pixels, mm."""
    caps = sample_capsules(np.random.default_rng(seed), frames, cam)
    full = simulate_depth(caps, cam, np.random.default_rng(seed))
    win = simulate(caps, cam, np.random.default_rng(seed), windows=True)
    other = simulate_depth(caps, cam, np.random.default_rng(seed + 1))  # same hands, new sensor draw
    half_cube = 0.5 * cfg.cube_mm
    rows, diffs = [], {"window_vs_full_frame": [], "second_sensor_draw_vs_full_frame": []}
    for b in range(frames):
        a = crop_or_nan(full[b], cam, cfg)
        w = crop_or_nan(win.window(win.depth_mm, b), cam, cfg, tuple(win.roi_px[b, :2]))
        o = crop_or_nan(other[b], cam, cfg)
        row = [depth_to_gray(a), depth_to_gray(w)]
        for name, c in (("window_vs_full_frame", w), ("second_sensor_draw_vs_full_frame", o)):
            mm = np.abs(c - a) * half_cube  # background vs hand: up to 2 half cubes
            diffs[name].append(float(mm[(a < 1) | (c < 1)].mean()))
            row.append(np.clip(mm * (255 / 50.0), 0, 255).astype(np.uint8))  # 50 mm -> white
        rows.append(np.concatenate([np.pad(x, 2) for x in row], axis=1))
    sheet = Image.fromarray(np.concatenate(rows, axis=0)).resize(
        (rows[0].shape[1] * 3, len(rows) * rows[0].shape[0] * 3), Image.NEAREST
    )
    canvas = Image.new("L", (sheet.width, sheet.height + 40), 0)
    canvas.paste(sheet, (0, 40))
    titles = ["full frame", "window", "|window - full|", "|2nd sensor - full|"]
    step = sheet.width // 4
    for i, title in enumerate(titles):
        ImageDraw.Draw(canvas).text((i * step + 6, 10), title, fill=255, font=font(18))
    canvas.save(path)
    return {k: round(float(np.mean(v)), 3) for k, v in diffs.items()}


def main(args: argparse.Namespace) -> dict:
    cam, cfg = get_camera(args.camera), CropConfig(cube_mm=args.cube_mm, crop_px=args.crop_px)
    warm_rng = np.random.default_rng(99)
    warm = sample_capsules(warm_rng, 2, cam)  # compile (or load from cache) every numba kernel first
    for windows in (False, True):
        simulate(warm, cam, warm_rng, windows=windows)
    simulate_depth(warm, cam, warm_rng, scene=SceneConfig.nyu_like())
    crop_or_nan(simulate_depth(warm, cam, warm_rng)[0], cam, cfg)

    t_total, (stage, crops) = timed(lambda: window_path(args, cam, cfg))
    t_full, full_crops = full_frame_path(args, cam, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = baseline_path(args, Path(tmp)) if args.baseline_rev else None

    # Render-only and the NYU-like scene (torso + head over the whole frame), on fresh hands.
    rng = np.random.default_rng(args.seed + 1)
    caps = sample_capsules(rng, args.chunk, cam)
    reps = max(1, args.frames // (4 * args.chunk))
    render_s = min(timed(lambda: render_depth(caps, cam))[0] for _ in range(reps)) / args.chunk
    nyu_scene = SceneConfig.nyu_like()
    nyu_s = min(timed(lambda: simulate_depth(caps, cam, rng, scene=nyu_scene))[0] for _ in range(reps))
    dirs = pixel_rays(cam)
    m = args.embree_frames
    emb_caps = sample_capsules(rng, m, cam)
    t_emb, emb = timed(lambda: [embree_depth(emb_caps, b, cam, dirs) for b in range(m)])
    t_emb_pre, _ = timed(lambda: [crop_or_nan(f, cam, cfg) for f in emb])
    t_emb_fk, _ = timed(lambda: sample_capsules(rng, m, cam))

    fps_e2e = args.frames / t_total
    fps_emb_e2e = m / (t_emb_fk + t_emb + t_emb_pre)
    result = {
        "camera": f"{args.camera} {cam.width_px}x{cam.height_px}",
        "crop": f"{args.crop_px} px, {args.cube_mm:g} mm",
        "frames": args.frames,
        "chunk": args.chunk,
        "threads": numba.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "fps_end_to_end": round(fps_e2e, 1),
        "fps_full_frame_path": round(args.frames / t_full, 1),
        "fps_baseline": None if baseline is None else round(baseline[0], 1),
        "baseline_rev": args.baseline_rev if baseline is not None else None,
        "fps_render_and_sensor": round(args.frames / stage["render_sensor"], 1),
        "fps_render_only": round(1.0 / render_s, 1),
        "fps_render_sensor_nyu_like_scene": round(args.chunk / nyu_s, 1),
        "fps_embree_render_only": round(m / t_emb, 2),
        "fps_embree_end_to_end": round(fps_emb_e2e, 2),
        "speedup_render_vs_embree": round(t_emb / m / render_s, 1),
        "speedup_end_to_end_vs_embree": round(fps_e2e / fps_emb_e2e, 1),
        "speedup_vs_full_frame_path": round(t_full / t_total, 2),
        "speedup_vs_baseline": None if baseline is None else round(fps_e2e / baseline[0], 2),
        "ms_per_frame": {k: round(1e3 * v / args.frames, 3) for k, v in stage.items()},
        "frames_without_hand": int(np.isnan(crops).any(axis=(1, 2)).sum()),
        "max_crop_difference_vs_full_frame": max_difference(crops, full_crops),
        "max_crop_difference_vs_baseline": None if baseline is None else max_difference(crops, baseline[1]),
    }
    if args.figure is not None:
        result["figure_mean_abs_difference_mm"] = comparison_figure(args.figure, cam, cfg)
    for k, v in result.items():
        print(f"{k:>36}: {v}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
