"""Latency of the latent-space explorer, server side and through Gradio, alone and under load.

Measures, on the bundled checkpoint (or --checkpoint):
- server side (the explorer's functions, no HTTP): upload -> pose (file read, preprocessing,
  network, generated depth), the whole upload tab (plus images, analysis by synthesis, 3D figure,
  JSON/CSV files), a slider move -> both figures, a 32-step walk (and its stages: one batch through
  generator, decoder and smoothness head; the figure; the page) and its GIF on request; each as
  wall time and as this process's CPU time (on a loaded machine the CPU time is what an idle
  one's wall time would be); and the size of what the walk and a slider move return;
- through Gradio (gradio_client against the app, started here as a separate process on 127.0.0.1,
  so clients and server do not share a GIL): one client alone, then --clients concurrent clients
  making --requests requests each, drawn from every endpoint (upload, mesh, every named slider,
  PCA and raw sliders, the latent buttons, 32-step walks and their GIFs; `MIX` gives the weights),
  per endpoint and overall. Round trips include gradio_client's own polling (every 50 ms) and the
  download of every file an event returns (a browser fetches the images at once, the JSON, CSV,
  GLB and GIF downloads only when clicked; --no-downloads fetches none).
- the CPU budget: the server's and the client's CPU time per request of each endpoint, one client
  alone, and the requests/s their `MIX`-weighted mean leaves room for on the machine's cores;
- with --variants, the load test again on servers started with other settings (the model events'
  shared concurrency limit, torch threads per request, the upload tab's refinement iterations), to
  see which of them matter.
The goal (issue 14): the walk <= 150 ms server side; under 20 clients x 50 requests: 0 errors,
>= 20 requests/s, p95 <= 1 s. Prints a summary, then one JSON line with every figure (ms).

Usage: python benchmarks/app.py [--checkpoint DIR] [--clients 20] [--requests 50] [--repeats 100]
           [--no-downloads] [--variants "concurrency=2,threads=1" "refine=0" ...]
Smoke run (a minute or two): python benchmarks/app.py --clients 4 --requests 8 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from crossingnets.explorer.figures import figure_page
from crossingnets.explorer.latent import latent_from_sliders, latent_view
from crossingnets.explorer.space import Explorer, ExplorerConfig
from crossingnets.explorer.upload import estimate_pose, upload_view
from crossingnets.explorer.walk import run_walk, walk_figures, walk_gif, walk_latents, walk_view
from crossingnets_app.launch import (
    OFFLINE_ENV,
    TORCH_THREADS,
    app_subprocess,
    bundled_checkpoint,
    free_port,
    launch_options,
    offline,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
UPLOAD = EXAMPLES / "synthetic_nyu_0.png"
# camera preset, custom fx fy cx cy, centre, unit, hand, camera file
NYU_ARGS = ("nyu", 588.03, 587.07, 320.0, 240.0, 0, 0, 0, "mm", "right", None)
WALK_STEPS = 32
# How often a client calls each endpoint (named sliders: each of them); the first request of a
# client is an upload, and a GIF follows a walk, so that no call lacks its state.
MIX = {
    "estimate": 4,
    "named": 10,
    "move_pca": 3,
    "move_raw": 2,
    "random_latent": 1,
    "reset_latent": 1,
    "latent_from_upload": 1,
    "walk": 2,
    "walk_gif": 1,
    "mesh": 1,
}


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    return {
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
        "n": len(ms),
    }


def timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """(wall ms, this process's CPU ms) of `repeats` calls after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return wall, cpu


def measure(result: dict, name: str, fn: Callable[[], object], repeats: int) -> None:
    wall, cpu = timed(fn, repeats)
    result[f"{name}_ms"] = percentiles(wall)
    result[f"{name}_cpu_ms"] = percentiles(cpu)


def server_side(ex: Explorer, repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    moves = iter(rng.uniform(-2, 2, (repeats + 1, len(ex.labels))))  # warm-up and repeats

    def slider_move():
        view = latent_view(ex, latent_from_sliders(ex, ex.axes.mean, next(moves)))
        return json.dumps(view.figure), view.depth

    out: dict[str, object] = {}
    walk_repeats = max(3, repeats // 5)
    with tempfile.TemporaryDirectory() as tmp:
        latents = walk_latents(ex, "two random samples", WALK_STEPS, 0, None, None, None)
        walk = run_walk(ex.estimator, latents)
        animation, _ = walk_figures(walk, ex.convention, ex.crop, ex.config.gif_frame_ms)
        measure(out, "upload_to_pose", lambda: estimate_pose(ex.estimator, UPLOAD, "nyu"), repeats)
        measure(
            out,
            "upload_tab",
            lambda: upload_view(ex, UPLOAD, "nyu", None, None, tempfile.mkdtemp(dir=tmp)),
            repeats,
        )
        measure(out, "slider_to_figures", slider_move, repeats)
        measure(
            out, f"walk_{WALK_STEPS}_steps", lambda: walk_view(ex, latents, "plotly.min.js"), walk_repeats
        )
        measure(out, "walk_networks", lambda: run_walk(ex.estimator, latents), walk_repeats)
        measure(
            out,
            "walk_figure",
            lambda: walk_figures(walk, ex.convention, ex.crop, ex.config.gif_frame_ms),
            walk_repeats,
        )
        measure(out, "walk_page", lambda: figure_page(animation, "plotly.min.js"), walk_repeats)
        measure(out, "walk_gif", lambda: walk_gif(ex, walk, tempfile.mkdtemp(dir=tmp)), 3)
        out["walk_html_kb"] = round(len(walk_view(ex, latents, "plotly.min.js").animation_html) / 1024, 1)
        sizes = [len(json.dumps(latent_view(ex, z).figure)) for z in ex.axes.sample(rng, 20)]
        out["slider_figure_kb"] = round(float(np.mean(sizes)) / 1024, 1)  # mean of 20 random latents
    out["walk_goal_met"] = out[f"walk_{WALK_STEPS}_steps_cpu_ms"]["p95"] <= 150
    return out


class Session:
    """One user: the requests of MIX in a random order, each timed; `upload` and `predict` send
    them (`HttpSession`, `GradioClientSession`)."""

    def __init__(self, ex: Explorer, seed: int, downloads: bool) -> None:
        self.rng = np.random.default_rng(seed)
        self.ex = ex
        self.downloads = downloads
        self.uploaded = self.walked = False

    def upload(self, path: Path) -> object:
        raise NotImplementedError

    def predict(self, api_name: str, *args) -> None:
        raise NotImplementedError

    def next_endpoint(self) -> str:
        if not self.uploaded:
            return "estimate"
        names = list(MIX)
        kind = str(self.rng.choice(names, p=np.array([MIX[n] for n in names]) / sum(MIX.values())))
        return "walk" if kind == "walk_gif" and not self.walked else kind

    def call(self, kind: str) -> str:
        """Make one request of this kind -> its endpoint's name."""
        ex, rng, predict = self.ex, self.rng, self.predict
        if kind == "estimate":
            predict("/estimate", self.upload(UPLOAD), *NYU_ARGS)
            self.uploaded = True
        elif kind == "named":
            k = int(rng.integers(len(ex.sliders.names)))
            lo, hi = ex.sliders.low[k], ex.sliders.high[k]
            value = float(np.round(rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo))))
            kind = f"named_{ex.sliders.names[k].replace(' ', '_')}"
            predict(f"/{kind}", value)
        elif kind == "move_pca":
            predict("/move_pca", *rng.uniform(-2, 2, len(ex.labels)).round(2).tolist())
        elif kind == "move_raw":
            predict(
                "/move_raw", *np.clip(ex.axes.sample(rng)[0], ex.axes.low, ex.axes.high).round(2).tolist()
            )
        elif kind == "walk":
            seed = int(rng.integers(1000))  # examples, slider, uploaded frames and their camera unused
            predict("/walk", "two random samples", WALK_STEPS, seed, None, None, None, None, None, "nyu")
            self.walked = True
        else:  # the buttons without inputs: random/reset latent, latent from upload, walk GIF, mesh
            predict(f"/{kind}")
        return kind

    def run(self, requests: int, latencies: dict[str, list[float]], errors: list[str]) -> None:
        for _ in range(requests):
            kind = self.next_endpoint()
            start = time.perf_counter()
            try:
                name = self.call(kind)
            except Exception as err:  # counted and reported, never raised: the load test goes on
                errors.append(f"{kind}: {type(err).__name__}: {err}")
                continue
            latencies.setdefault(name, []).append(1000 * (time.perf_counter() - start))


class HttpSession(Session):
    """A page's requests through Gradio's HTTP API (upload, /call and its event stream, in one
    session so its state holds), then the images it would show (PNG, GIF; not the JSON, CSV or
    GLB downloads, which a browser fetches only when clicked). Light on the client's CPU (httpx),
    so the load test measures the server, as browsers on other machines would."""

    IMAGES = (".png", ".gif", ".webp")

    def __init__(self, url: str, ex: Explorer, seed: int, downloads: bool) -> None:
        import httpx

        super().__init__(ex, seed, downloads)
        self.http = httpx.Client(base_url=f"{url}gradio_api/", timeout=300)
        self.session_hash = f"bench{seed}-{os.getpid()}"

    def upload(self, path: Path) -> dict:
        response = self.http.post("upload", files={"files": (path.name, path.read_bytes())})
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def predict(self, api_name: str, *args) -> None:
        body = {"data": list(args), "session_hash": self.session_hash}
        response = self.http.post(f"call{api_name}", json=body)
        response.raise_for_status()
        event, data = None, None
        with self.http.stream("GET", f"call{api_name}/{response.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line[len("data: ") :])
                    break
        if event != "complete":
            raise RuntimeError(f"{api_name} ended with {event}: {data}")
        for url in self.image_urls(data) if self.downloads else ():
            self.http.get(url).raise_for_status()

    def image_urls(self, value: object) -> Iterator[str]:
        """The URLs of the images among an event's outputs (files, updates, galleries)."""
        if isinstance(value, dict):
            url = value.get("url")
            if isinstance(url, str) and url.lower().endswith(self.IMAGES):
                yield url
            for item in value.values():
                yield from self.image_urls(item)
        elif isinstance(value, list):
            for item in value:
                yield from self.image_urls(item)


class GradioClientSession(Session):
    """The same requests through gradio_client, which downloads every file an event returns and
    costs the client ~0.1-0.5 s of CPU a request (it shares the machine with the server here)."""

    def __init__(self, url: str, ex: Explorer, seed: int, downloads: bool) -> None:
        from gradio_client import Client

        super().__init__(ex, seed, downloads)
        self.client = Client(url, verbose=False, download_files=downloads)

    def upload(self, path: Path) -> object:
        from gradio_client import handle_file

        return handle_file(str(path))

    def predict(self, api_name: str, *args) -> None:
        self.client.predict(*args, api_name=api_name)


CLIENTS = {"http": HttpSession, "gradio_client": GradioClientSession}


def load_test(
    url: str, ex: Explorer, clients: int, requests: int, downloads: bool = True, client: str = "http"
) -> dict[str, object]:
    """`clients` sessions at once, `requests` each; per endpoint and overall round trips (ms)."""
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    # connected before the clock starts
    sessions = [CLIENTS[client](url, ex, seed, downloads) for seed in range(clients)]
    threads = [threading.Thread(target=s.run, args=(requests, latencies, errors)) for s in sessions]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    every = [ms for v in latencies.values() for ms in v]
    named = [ms for k, v in latencies.items() if k.startswith("named_") for ms in v]
    interactive = [ms for k, v in latencies.items() if k != "mesh" for ms in v]  # the mesh's IK takes seconds
    per_endpoint = {k: percentiles(v) for k, v in sorted(latencies.items()) if not k.startswith("named_")}
    overall = percentiles(every)
    rate = len(every) / wall
    return {
        "clients": clients,
        "requests": clients * requests,
        "errors": len(errors),
        "requests_per_s": round(rate, 1),
        "wall_s": round(wall, 1),
        "all_ms": overall,
        "all_but_mesh_ms": percentiles(interactive),
        "endpoints_ms": {**per_endpoint, "named_sliders": percentiles(named)},
        "goal_met": len(errors) == 0 and rate >= 20 and overall["p95"] <= 1000,
        "first_errors": errors[:3],
    }


def process_cpu_ms(pid: int) -> float:
    """CPU time (user + system, ms) process `pid` has used so far (Linux /proc; 10 ms ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cpu_budget(url: str, server_pid: int, ex: Explorer, calls: int) -> dict[str, object]:
    """The server's and the client's CPU per request of each endpoint (one client, sequential,
    `calls` each after one warm-up; the mesh a third as many), their `MIX`-weighted means and the
    requests/s those leave room for on this machine's cores: the load test's ceiling, whatever the
    queue's settings."""
    session = HttpSession(url, ex, 0, downloads=True)
    session.call("estimate")  # the upload the state-dependent endpoints start from
    server, client = {}, {}
    for kind in MIX:
        n = max(1, calls // 3) if kind == "mesh" else calls
        session.call("walk" if kind == "walk_gif" else kind)  # the GIF is of the last walk
        server_start, client_start = process_cpu_ms(server_pid), time.process_time()
        for _ in range(n):
            session.call(kind)
        server[kind] = round((process_cpu_ms(server_pid) - server_start) / n, 1)
        client[kind] = round(1000 * (time.process_time() - client_start) / n, 1)
    cores = len(os.sched_getaffinity(0))

    def mean(ms: dict[str, float], kinds) -> float:  # MIX-weighted over `kinds`
        return sum(MIX[k] * ms[k] for k in kinds) / sum(MIX[k] for k in kinds)

    def ceiling(kinds) -> float:  # requests/s of `kinds` in MIX's proportions that the cores hold
        return round(1000 * cores / (mean(server, kinds) + mean(client, kinds)), 1)

    return {
        "server_cpu_ms_per_request": server,
        "client_cpu_ms_per_request": client,
        "mix_server_cpu_ms": round(mean(server, MIX), 1),
        "mix_client_cpu_ms": round(mean(client, MIX), 1),
        "requests_per_s_ceiling": ceiling(MIX),
        "requests_per_s_ceiling_without_mesh": ceiling([k for k in MIX if k != "mesh"]),
    }


def through_gradio(url: str, ex: Explorer, args: argparse.Namespace, alone: bool = True) -> dict[str, object]:
    """One client alone (unless not `alone`), then the load test, with the clients and downloads
    `args` asks for."""
    options = {"downloads": not args.no_downloads, "client": args.client}
    out = {"alone": load_test(url, ex, 1, min(50, 2 * args.requests), **options)} if alone else {}
    return {**out, "load": load_test(url, ex, args.clients, args.requests, **options)}


@contextlib.contextmanager
def app_process(cmd: list[str], port: int) -> Iterator[tuple[str, int]]:
    """A server command (on `port`) in a child process; yields its URL and process id once it
    answers, then stops it."""
    with app_subprocess(cmd, port, {**os.environ, **OFFLINE_ENV}, stdout=subprocess.DEVNULL) as proc:
        yield f"http://127.0.0.1:{port}/", proc.pid


def app_command(checkpoint: Path, port: int) -> list[str]:
    """`crossingnets app`, as a user starts it."""
    return [
        sys.executable,
        "-m",
        "crossingnets.cli",
        "app",
        "--checkpoint",
        str(checkpoint),
        "--port",
        str(port),
    ]


def variant_command(checkpoint: Path, port: int, variant: str) -> list[str]:
    """This script serving the app with other settings ("concurrency=N,threads=T")."""
    return [
        sys.executable,
        __file__,
        "--serve",
        variant,
        "--checkpoint",
        str(checkpoint),
        "--port",
        str(port),
    ]


def parse_variant(variant: str) -> dict[str, int | None]:
    """Parse "concurrency=N,threads=T,refine=R" (any of them) into the server's settings; refine:
    the upload tab's refinement iterations (`crossingnets app --refine-iterations`)."""
    settings: dict[str, int | None] = {"concurrency": None, "threads": TORCH_THREADS, "refine": None}
    for item in filter(None, variant.split(",")):
        key, _, value = item.partition("=")
        if key not in settings or not value.isdigit():
            raise SystemExit(f"variant {variant!r}: expected concurrency=N,threads=T,refine=R")
        settings[key] = int(value)
    return settings


def serve(checkpoint: Path, port: int, variant: str) -> None:
    """Serve the app as `crossingnets app` does, with a variant's settings, until terminated."""
    from crossingnets_app.ui import EXAMPLES_DIR, MODEL_CONCURRENCY, build_demo

    settings = parse_variant(variant)
    offline()
    torch.set_num_threads(settings["threads"])
    explorer = Explorer.load(checkpoint, EXAMPLES_DIR, ExplorerConfig(refine_iterations=settings["refine"]))
    demo = build_demo(explorer, settings["concurrency"] or MODEL_CONCURRENCY)
    demo.queue(default_concurrency_limit=settings["concurrency"] or MODEL_CONCURRENCY)
    demo.launch(**launch_options("127.0.0.1", port))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=bundled_checkpoint())
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--repeats", type=int, default=100, help="server-side calls per measurement")
    parser.add_argument("--cpu-calls", type=int, default=10, help="requests per endpoint for the CPU budget")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help='load tests on other settings: "concurrency=2,threads=1", "refine=0"',
    )
    parser.add_argument(
        "--no-downloads", action="store_true", help="clients fetch none of the files returned"
    )
    parser.add_argument(
        "--client", choices=sorted(CLIENTS), default="http", help="how the clients talk to the app (http)"
    )
    parser.add_argument("--serve", metavar="VARIANT", help=argparse.SUPPRESS)  # a variant's server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser


def main(args: argparse.Namespace) -> dict[str, object] | None:
    if args.serve is not None:  # this script, started again as one variant's server
        serve(args.checkpoint, args.port, args.serve)
        return None
    offline()  # before gradio_client (and huggingface_hub) are imported
    torch.set_num_threads(TORCH_THREADS)  # as the app server does
    result: dict[str, object] = {
        "checkpoint": str(args.checkpoint),
        "torch_threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average": round(os.getloadavg()[0], 2),
        "downloads": not args.no_downloads,
        "client": args.client,
    }
    ex = Explorer.load(args.checkpoint, EXAMPLES)
    result.update(server_side(ex, args.repeats))
    port = free_port()
    with app_process(app_command(args.checkpoint, port), port) as (url, pid):
        result["cpu_budget"] = cpu_budget(url, pid, ex, args.cpu_calls)
        result.update(through_gradio(url, ex, args))
    for variant in args.variants:
        port = free_port()
        with app_process(variant_command(args.checkpoint, port, variant), port) as (url, _):
            result[f"variant {variant}"] = through_gradio(url, ex, args, alone=False)["load"]
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
