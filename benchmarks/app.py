"""Latency of the latent-space explorer, server side and through Gradio, alone and under load.

Measures, on the bundled checkpoint (or --checkpoint):
- server side (the explorer's functions, no HTTP): upload -> pose (file read, preprocessing,
  network, generated depth), the whole upload tab (plus images, 3D figure, JSON/CSV files), a
  slider move -> both figures (decoded pose figure as JSON, generated depth image), a 32-step walk;
- through Gradio (gradio_client against a server started here on 127.0.0.1): one client alone,
  then 20 concurrent clients making 50 requests each (alternately an upload and a slider move).
Prints a summary, then one JSON line with every figure (ms; p50 and p95).

Usage: python benchmarks/app.py [--checkpoint DIR] [--clients 20] [--requests 50] [--repeats 100]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from crossingnets.explorer.explore import estimate_pose
from crossingnets.explorer.launch import BUNDLED_CHECKPOINT, OFFLINE_ENV, running_app
from crossingnets.explorer.views import (
    Explorer,
    latent_from_sliders,
    latent_view,
    upload_view,
    walk_latents,
    walk_view,
)

os.environ.update(OFFLINE_ENV)
EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
UPLOAD = EXAMPLES / "synthetic_nyu_0.png"
NYU_ARGS = ("nyu", 588.03, 587.07, 320.0, 240.0, 0, 0, 0)  # camera preset, custom fx fy cx cy, centre


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds of `repeats` calls after one warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - start))
    return out


def server_side(ex: Explorer, repeats: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    sigmas = rng.uniform(-2, 2, (repeats + 1, len(ex.labels)))
    moves = iter(sigmas)

    def slider_move():
        view = latent_view(ex, latent_from_sliders(ex, ex.axes.mean, next(moves)))
        return json.dumps(view.figure), view.depth

    with tempfile.TemporaryDirectory() as tmp:
        walk = walk_latents(ex, "two random samples", 32, 0, None, None, None)
        return {
            "upload_to_pose_ms": percentiles(
                timed(lambda: estimate_pose(ex.estimator, UPLOAD, "nyu"), repeats)
            ),
            "upload_tab_ms": percentiles(
                timed(lambda: upload_view(ex, UPLOAD, "nyu", None, None, tempfile.mkdtemp(dir=tmp)), repeats)
            ),
            "slider_to_figures_ms": percentiles(timed(slider_move, repeats)),
            "walk_32_steps_ms": percentiles(
                timed(lambda: walk_view(ex, walk, tempfile.mkdtemp(dir=tmp), "plotly.min.js"), 5)
            ),
        }


def client_requests(url: str, requests: int, latencies: dict[str, list[float]], errors: list[str]) -> None:
    """One gradio_client session making `requests` requests, alternately an upload and a slider move."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    rng = np.random.default_rng(threading.get_ident() % 2**32)
    for i in range(requests):
        kind = "upload" if i % 2 == 0 else "slider"
        start = time.perf_counter()
        try:
            if kind == "upload":
                client.predict(handle_file(str(UPLOAD)), *NYU_ARGS, api_name="/estimate")
            else:
                client.predict(*rng.uniform(-2, 2, 8).round(2), api_name="/move_pca")
        except Exception as err:  # counted and reported, never raised: the load test goes on
            errors.append(f"{kind}: {type(err).__name__}: {err}")
            continue
        latencies[kind].append(1000 * (time.perf_counter() - start))


def through_gradio(url: str, clients: int, requests: int) -> dict[str, object]:
    alone: dict[str, list[float]] = {"upload": [], "slider": []}
    errors: list[str] = []
    client_requests(url, 2 * 25, alone, errors)
    loaded: dict[str, list[float]] = {"upload": [], "slider": []}
    threads = [
        threading.Thread(target=client_requests, args=(url, requests, loaded, errors)) for _ in range(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    done = sum(len(v) for v in loaded.values())
    return {
        "alone_upload_ms": percentiles(alone["upload"]),
        "alone_slider_ms": percentiles(alone["slider"]),
        "load_clients": clients,
        "load_requests": clients * requests,
        "load_errors": len(errors),
        "load_upload_ms": percentiles(loaded["upload"]),
        "load_slider_ms": percentiles(loaded["slider"]),
        "load_requests_per_s": round(done / wall, 1),
        "load_wall_s": round(wall, 1),
        "first_errors": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--repeats", type=int, default=100, help="server-side calls per measurement")
    args = parser.parse_args()
    result: dict[str, object] = {
        "checkpoint": str(args.checkpoint),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    result.update(server_side(Explorer.load(args.checkpoint, EXAMPLES), args.repeats))
    with running_app(args.checkpoint) as url:
        result.update(through_gradio(url, args.clients, args.requests))
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
