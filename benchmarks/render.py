"""Synthetic depth frames per second, pose to network input, beside trimesh + embree ray casting.

    python benchmarks/render.py            # < 1 min on 2 idle cores; the last line is JSON

Stages, each timed over the same frames: sample poses + forward kinematics + capsules; render +
sensor effects at the camera's resolution (`simulate_depth`, numba, all cores); the shared
`preprocess` (centre detection + 128x128 crop), one frame at a time. Render-only figures compare
`render_depth` (hand alone, no sensor) with trimesh's embree ray caster on `hand_mesh` of the same
capsules, one ray per pixel of the same frame.

"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numba
import numpy as np
import trimesh

from crossingnets.camera import Intrinsics, get_camera
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.kinematics import hand_capsules
from crossingnets.hand.mesh import hand_mesh
from crossingnets.hand.render import render_depth
from crossingnets.hand.sampler import sample_hands
from crossingnets.hand.sensor import SceneConfig, simulate_depth


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1024, help="frames through the full pipeline")
    p.add_argument("--chunk", type=int, default=16, help="frames per render call (small chunks reuse memory)")
    p.add_argument("--pose-block", type=int, default=256, help="poses sampled per call (FK is torch)")
    p.add_argument("--embree-frames", type=int, default=12, help="frames ray cast with trimesh + embree")
    p.add_argument("--camera", default="nyu", help="nyu (640x480), icvl or msra (320x240)")
    p.add_argument("--seed", type=int, default=0)
    return p


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def sample_capsules(rng: np.random.Generator, n: int, cam: Intrinsics) -> Capsules:
    return hand_capsules(*sample_hands(rng, n, cam))


def crop_all(depth_mm: np.ndarray, cam: Intrinsics, cfg: CropConfig) -> int:
    """Run the shared preprocessing on every frame; returns how many held no hand."""
    misses = 0
    for frame in depth_mm:
        try:
            preprocess(frame, cam, cfg)
        except NoHandError:
            misses += 1
    return misses


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


def main(args: argparse.Namespace) -> dict:
    cam, crop = get_camera(args.camera), CropConfig()
    rng = np.random.default_rng(args.seed)
    warm = sample_capsules(rng, 2, cam)  # compile (or load from cache) every numba kernel first
    simulate_depth(warm, cam, rng)
    simulate_depth(warm, cam, rng, scene=SceneConfig.nyu_like())
    render_depth(warm, cam)
    crop_all(np.full((1, 4, 4), 500.0, np.float32), cam, crop)
    stage = {"sample_fk": 0.0, "render_sensor": 0.0, "preprocess": 0.0}
    misses = 0
    t_total = time.perf_counter()
    for first in range(0, args.frames, args.pose_block):
        n = min(args.pose_block, args.frames - first)
        dt, block = timed(lambda n=n: sample_capsules(rng, n, cam))
        stage["sample_fk"] += dt
        for i in range(0, len(block.radius_mm), args.chunk):
            caps = Capsules(*(a[i : i + args.chunk] for a in block))
            dt, depth = timed(lambda caps=caps: simulate_depth(caps, cam, rng))
            stage["render_sensor"] += dt
            dt, missed = timed(lambda depth=depth: crop_all(depth, cam, crop))
            stage["preprocess"] += dt
            misses += missed
    t_total = time.perf_counter() - t_total
    # Render-only and the NYU-like scene (torso + head over the whole frame), on fresh hands.
    caps = sample_capsules(rng, args.chunk, cam)
    reps = max(1, args.frames // (4 * args.chunk))
    render_s = min(timed(lambda: render_depth(caps, cam))[0] for _ in range(reps)) / args.chunk
    nyu_scene = SceneConfig.nyu_like()
    nyu_s = min(timed(lambda: simulate_depth(caps, cam, rng, scene=nyu_scene))[0] for _ in range(reps))

    dirs = pixel_rays(cam)
    m = args.embree_frames
    emb_caps = sample_capsules(rng, m, cam)
    t_emb, emb = timed(lambda: [embree_depth(emb_caps, b, cam, dirs) for b in range(m)])
    t_emb_pre, _ = timed(lambda: crop_all(np.stack(emb), cam, crop))
    t_emb_fk, _ = timed(lambda: sample_capsules(rng, m, cam))

    fps_e2e = args.frames / t_total
    fps_render = 1.0 / render_s
    fps_emb_render = m / t_emb
    fps_emb_e2e = m / (t_emb_fk + t_emb + t_emb_pre)
    ms = {k: 1e3 * v / args.frames for k, v in stage.items()}
    result = {
        "camera": f"{args.camera} {cam.width_px}x{cam.height_px}",
        "frames": args.frames,
        "chunk": args.chunk,
        "pose_block": args.pose_block,
        "threads": numba.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "fps_end_to_end": round(fps_e2e, 1),
        "fps_render_and_sensor": round(args.frames / stage["render_sensor"], 1),
        "fps_render_only": round(fps_render, 1),
        "fps_render_sensor_nyu_like_scene": round(args.chunk / nyu_s, 1),
        "fps_embree_render_only": round(fps_emb_render, 2),
        "fps_embree_end_to_end": round(fps_emb_e2e, 2),
        "speedup_render_vs_embree": round(fps_render / fps_emb_render, 1),
        "speedup_end_to_end_vs_embree": round(fps_e2e / fps_emb_e2e, 1),
        "ms_per_frame": {k: round(v, 3) for k, v in ms.items()},
        "preprocess_share": round(stage["preprocess"] / t_total, 3),
        "frames_without_hand": misses,
    }
    for k, v in result.items():
        print(f"{k:>34}: {v}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
