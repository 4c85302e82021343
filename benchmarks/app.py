"""Latency of the latent-space explorer, server side and through Gradio, alone and under load.

Measures, on the bundled checkpoint (or --checkpoint):
- server side (the explorer's functions, no HTTP): upload -> pose (file read, preprocessing,
  network, generated depth), the whole upload tab (plus images, 3D figure, JSON/CSV files), a
  slider move -> both figures (decoded pose figure as JSON, generated depth image), a 32-step walk;
- through Gradio (gradio_client against `crossingnets app`, started here as a separate process on
  127.0.0.1, so clients and server do not share a GIL): one client alone, then 20 concurrent
  clients making 50 requests each (alternately an upload and a slider move). Round trips include
  gradio_client's own polling (it checks for messages every 50 ms).
Prints a summary, then one JSON line with every figure (ms; p50 and p95).

Usage: python benchmarks/app.py [--checkpoint DIR] [--clients 20] [--requests 50] [--repeats 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from crossingnets.explorer.latent import latent_from_sliders, latent_view
from crossingnets.explorer.space import Explorer
from crossingnets.explorer.upload import estimate_pose, upload_view
from crossingnets.explorer.walk import walk_latents, walk_view
from crossingnets_app.launch import OFFLINE_ENV, TORCH_THREADS, bundled_checkpoint, offline

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


@contextlib.contextmanager
def app_process(checkpoint: Path, startup_s: float = 300.0) -> Iterator[str]:
    """`crossingnets app` in a child process on a free loopback port; yields its URL, then stops it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "crossingnets.cli",
        "app",
        "--checkpoint",
        str(checkpoint),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, **OFFLINE_ENV}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"crossingnets app exited with code {proc.returncode}")
            try:
                urllib.request.urlopen(url + "gradio_api/info", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"crossingnets app did not answer within {startup_s:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=bundled_checkpoint())
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--repeats", type=int, default=100, help="server-side calls per measurement")
    return parser


def main(args: argparse.Namespace) -> dict[str, object]:
    offline()  # before gradio_client (and huggingface_hub) are imported
    torch.set_num_threads(TORCH_THREADS)  # as the app server does
    result: dict[str, object] = {
        "checkpoint": str(args.checkpoint),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    result.update(server_side(Explorer.load(args.checkpoint, EXAMPLES), args.repeats))
    with app_process(args.checkpoint) as url:
        result.update(through_gradio(url, args.clients, args.requests))
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
