"""Soak: the app under many clients for a long time, every endpoint, good and bad input.

`crossingnets app` runs as a child process (its own temporary folder, a short --file-lifetime);
`--clients` gradio_client sessions call every named endpoint of its API for `--minutes`: uploads
of the examples (with their camera, or any camera), bad uploads (corrupt, NaN, empty, oversized,
16 MB and more), slider moves, random latents, mesh downloads, walks (a third of them the longest
allowed), each with arguments drawn from the endpoint's own API description. Measured:
- server errors: an exception the app did not turn into a message (Gradio's generic error), a
  failed connection, or a Traceback in the server's log; a user error (a bad file, a call that
  needs an upload first) is a message, counted apart;
- the server's memory (VmRSS from /proc, sampled every few seconds): growth from the end of the
  warm-up (the first tenth of the load) to the end;
- its temporary files (count and bytes, Gradio's cache and the app's own output folders apart):
  bounded when the count stops growing once files reach the lifetime;
- latency of one client alone (upload -> pose, slider move) before and after the load.
Prints a summary and one JSON line; exits non-zero when a criterion fails.

Usage: python benchmarks/soak.py [--minutes 10] [--clients 20] [--file-lifetime 120]
       python benchmarks/soak.py --minutes 1 --clients 20 --file-lifetime 20   (a smoke run)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from crossingnets_app.launch import OFFLINE_ENV, app_subprocess, bundled_checkpoint, free_port, offline

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
GENERIC_ERROR = "has not enabled verbose error reporting"  # Gradio's text for an unhandled exception
LONG_WALK_STEPS = 64  # ExplorerConfig.max_walk_steps
TIMEOUT_S = 120.0  # an HTTP request of a client unanswered this long is a server error


def bad_uploads(folder: Path) -> list[Path]:
    """Files a careless or hostile user uploads; each must come back as a message."""
    folder.mkdir(parents=True, exist_ok=True)
    good = (EXAMPLES / "synthetic_nyu_0.png").read_bytes()
    files = {
        "text.png": b"not an image at all\n",
        "truncated.png": good[: len(good) // 3],
        "flipped.png": good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:],
        "empty.bin": b"",
        "box_outside.bin": np.array([320, 240, 300, 200, 400, 300], "<u4").tobytes() + b"\0" * 64,
        "header.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (99999, 99999), }",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    np.save(folder / "nan.npy", np.full((480, 640), np.nan, np.float32))
    Image.fromarray(np.full((48, 64), 90, np.uint8)).save(folder / "gray8.png")
    Image.new("1", (10_000, 10_000)).save(folder / "huge_side.png")
    with (folder / "big.npy").open("wb") as f:
        f.truncate(17 * 2**20)  # above the explorer's 16 MB limit, below Gradio's 64 MB
    return sorted(folder.iterdir())


def camera_of(path: Path) -> str:
    return "msra" if path.suffix == ".bin" else "nyu"


def choices(python_type: str) -> list[str]:
    """The values of a `Literal[...]` parameter type of the API description."""
    return re.findall(r"'([^']*)'", python_type) if python_type.startswith("Literal") else []


class Session:
    """One user: a gradio_client session calling endpoints with drawn arguments, recording outcomes."""

    def __init__(self, url: str, api: dict, bad: list[Path], rng: random.Random, log: Recorder) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": TIMEOUT_S})
        self.api, self.bad, self.rng, self.log = api, bad, rng, log
        self.examples = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".png", ".bin"))

    def arguments(self, endpoint: str) -> tuple[dict, bool]:
        """Keyword arguments for `endpoint` from its parameters' defaults and types, and whether the
        call must succeed (a good upload with its camera, or a random or reset latent); any other
        call may end in a message (a walk or mesh before an upload, a camera that does not fit)."""
        from gradio_client import handle_file

        kwargs, must_succeed = {}, endpoint in ("/estimate", "/random_latent", "/reset_latent")
        upload = self.rng.choice(self.examples)
        bad = bool(self.bad) and self.rng.random() < 0.25
        for p in self.api["named_endpoints"][endpoint]["parameters"]:
            name, kind, default = p["parameter_name"], p["component"], p.get("parameter_default")
            options = choices(p["python_type"]["type"])
            if kind == "File":
                chosen = self.rng.choice(self.bad) if bad else upload
                kwargs[name] = handle_file(str(chosen)) if name in ("path", "file_a", "file_b") else None
            elif name in ("cam",):
                kwargs[name] = camera_of(upload) if self.rng.random() < 0.8 else self.rng.choice(options)
                must_succeed &= kwargs[name] == camera_of(upload)
            elif name == "steps_":
                kwargs[name] = LONG_WALK_STEPS if self.rng.random() < 0.33 else 16
            elif options:
                kwargs[name] = default if endpoint == "/estimate" else self.rng.choice(options)
            elif (
                kind in ("Slider", "Number") and isinstance(default, (int, float)) and endpoint != "/estimate"
            ):
                kwargs[name] = round(default * self.rng.uniform(0.9, 1.1), 3)  # within the slider's range
            elif default is not None or p.get("parameter_has_default"):
                kwargs[name] = default
        return kwargs, must_succeed and not bad

    def call(self, endpoint: str) -> None:
        kwargs, must_succeed = self.arguments(endpoint)
        start = time.perf_counter()
        try:
            self.client.predict(**kwargs, api_name=endpoint)
            outcome = "ok"
        except Exception as err:  # classified, never raised: the soak goes on
            text = f"{type(err).__name__}: {err}"
            user_message = type(err).__name__ == "AppError" and GENERIC_ERROR not in text
            outcome = "user_error" if user_message and not must_succeed else "server_error"
            if outcome == "server_error":
                self.log.errors.append(f"{endpoint} {kwargs}: {text[:300]}")
        self.log.record(endpoint, outcome, 1000 * (time.perf_counter() - start))


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: dict[str, Counter] = defaultdict(Counter)
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    def record(self, endpoint: str, outcome: str, ms: float) -> None:
        with self.lock:
            self.outcomes[endpoint][outcome] += 1
            if outcome == "ok":
                self.latency_ms[endpoint].append(ms)


def weights(endpoints: list[str]) -> list[float]:
    """How often each endpoint is called: uploads and slider moves most, as a user does."""
    table = {"/estimate": 6.0, "/walk": 2.0, "/mesh": 1.0, "/latent_from_upload": 1.0, "/move_pca": 3.0}
    return [table.get(e, 1.0) for e in endpoints]


def alone(url: str, api: dict, repeats: int) -> dict[str, float]:
    """p50 latency (ms) of one client alone: a good upload and a slider move."""
    log = Recorder()
    session = Session(url, api, [], random.Random(0), log)  # good uploads only
    for _ in range(repeats):
        for endpoint in ("/estimate", "/move_pca"):
            session.call(endpoint)
    return {e: round(float(np.percentile(v, 50)), 1) for e, v in log.latency_ms.items()}


def server_memory_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))


def temp_files(root: Path) -> dict[str, tuple[int, int]]:
    """(files, bytes) under the server's temporary folder: Gradio's cache, the app's own folders
    (the server deletes files meanwhile: what is gone before it is read is not counted)."""
    out = {}
    for part, pattern in (("gradio_cache", "gradio"), ("app_folders", "crossingnets-app-*")):
        sizes = []
        for folder, _, names in (w for d in root.glob(pattern) for w in os.walk(d)):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    sizes.append(os.stat(os.path.join(folder, name)).st_size)
        out[part] = (len(sizes), sum(sizes))
    return out


@contextlib.contextmanager
def server(
    checkpoint: Path, tmp: Path, lifetime_s: int, startup_s: float = 300.0
) -> Iterator[tuple[str, int]]:
    """`crossingnets app` in a child process with its own temporary folder and a log; yields (url, pid)."""
    port = free_port()
    cmd = [sys.executable, "-m", "crossingnets.cli", "app", "--checkpoint", str(checkpoint), "--port", str(port),
           "--file-lifetime", str(lifetime_s)]  # fmt: skip
    env = {**os.environ, **OFFLINE_ENV, "TMPDIR": str(tmp)}
    env.pop("GRADIO_TEMP_DIR", None)
    with (
        (tmp.parent / "server.log").open("w") as log,
        app_subprocess(cmd, port, env, startup_s, stdout=log, stderr=subprocess.STDOUT) as proc,
    ):
        yield f"http://127.0.0.1:{port}/", proc.pid


def load(url: str, api: dict, bad: list[Path], args: argparse.Namespace, pid: int, tmp: Path) -> dict:
    """`args.clients` sessions for `args.minutes`, with memory and temporary files sampled meanwhile."""
    log, stop = Recorder(), threading.Event()
    endpoints = sorted(api["named_endpoints"])

    def user(seed: int) -> None:
        rng = random.Random(seed)
        try:
            session = Session(url, api, bad, rng, log)
        except Exception as err:  # the server did not answer a new session: counted, not raised
            log.errors.append(f"new session: {type(err).__name__}: {err}")
            log.record("(new session)", "server_error", 0.0)
            return
        while not stop.is_set():
            session.call(rng.choices(endpoints, weights(endpoints))[0])

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(args.clients)]
    samples = []
    start = time.monotonic()
    for t in threads:
        t.start()
    while time.monotonic() - start < 60 * args.minutes:
        samples.append(
            {"t_s": round(time.monotonic() - start, 1), "rss_kb": server_memory_kb(pid), **temp_files(tmp)}
        )
        time.sleep(args.sample_s)
    stop.set()
    for t in threads:
        t.join(timeout=300)
    samples.append(
        {"t_s": round(time.monotonic() - start, 1), "rss_kb": server_memory_kb(pid), **temp_files(tmp)}
    )
    warm = samples[max(1, len(samples) // 10)]
    done = sum(sum(c.values()) for c in log.outcomes.values())
    return {
        "requests": done,
        "requests_per_s": round(done / (samples[-1]["t_s"] or 1), 2),
        "outcomes": {e: dict(c) for e, c in sorted(log.outcomes.items())},
        "latency_p50_ms": {
            e: round(float(np.percentile(v, 50)), 1) for e, v in sorted(log.latency_ms.items())
        },
        "latency_p95_ms": {
            e: round(float(np.percentile(v, 95)), 1) for e, v in sorted(log.latency_ms.items())
        },
        "server_errors": sum(c["server_error"] for c in log.outcomes.values()),
        "first_server_errors": log.errors[:5],
        "rss_mb_after_warmup": round(warm["rss_kb"] / 1024, 1),
        "rss_mb_end": round(samples[-1]["rss_kb"] / 1024, 1),
        "rss_mb_peak": round(max(s["rss_kb"] for s in samples) / 1024, 1),
        "rss_growth": round(samples[-1]["rss_kb"] / warm["rss_kb"] - 1, 4),
        "samples": samples,
    }


def bounded(samples: list[dict], part: str, lifetime_s: float) -> bool | None:
    """Whether the file count of `part` stopped growing: its last value is within 25 % of its value
    once the oldest files reached their lifetime (and the cleanup, a minute at most, ran); None
    when the run was too short to tell."""
    settled = [s for s in samples if s["t_s"] >= lifetime_s + 60]
    if len(settled) < 2:
        return None
    return settled[-1][part][0] <= 1.25 * max(settled[0][part][0], 1)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=bundled_checkpoint())
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--file-lifetime", type=int, default=120, help="the app's --file-lifetime, seconds")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between memory/file samples")
    parser.add_argument("--alone", type=int, default=10, help="single-client calls before and after")
    parser.add_argument("--max-rss-growth", type=float, default=0.10)
    parser.add_argument("--max-slowdown", type=float, default=1.5, help="p50 alone after / before")
    return parser


def main(args: argparse.Namespace) -> dict:
    offline()  # before gradio_client (and huggingface_hub) are imported
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="crossingnets-soak-") as work:
        tmp = Path(work) / "server_tmp"
        tmp.mkdir()
        bad = bad_uploads(Path(work) / "bad")
        with server(args.checkpoint, tmp, args.file_lifetime) as (url, pid):
            api = Client(url, verbose=False, download_files=False).view_api(
                print_info=False, return_format="dict"
            )
            before = alone(url, api, args.alone)
            result = load(url, api, bad, args, pid, tmp)
            after = alone(url, api, args.alone)
        tracebacks = (Path(work) / "server.log").read_text(errors="replace").count("Traceback")
    slowdown = {e: round(after[e] / before[e], 2) for e in before if e in after}
    samples = result.pop("samples")
    result.update(
        clients=args.clients,
        minutes=args.minutes,
        file_lifetime_s=args.file_lifetime,
        endpoints=sorted(api["named_endpoints"]),
        alone_p50_ms_before=before,
        alone_p50_ms_after=after,
        slowdown_alone=slowdown,
        server_log_tracebacks=tracebacks,
        temp_files_end={k: {"files": v[0], "mb": round(v[1] / 2**20, 1)} for k, v in samples[-1].items() if k in ("gradio_cache", "app_folders")},
        temp_files_peak={k: max(s[k][0] for s in samples) for k in ("gradio_cache", "app_folders")},
        temp_bounded={k: bounded(samples, k, args.file_lifetime) for k in ("gradio_cache", "app_folders")},
        rss_mb_series=[round(s["rss_kb"] / 1024) for s in samples],
        files_series={k: [s[k][0] for s in samples] for k in ("gradio_cache", "app_folders")},
    )  # fmt: skip
    result["passed"] = {
        "no_server_errors": result["server_errors"] == 0 and tracebacks == 0,
        "rss_growth": result["rss_growth"] <= args.max_rss_growth,
        "temp_files_bounded": all(v is not False for v in result["temp_bounded"].values()),
        "latency_after": all(v <= args.max_slowdown for v in slowdown.values()),
    }
    for key, value in result.items():
        if key not in ("outcomes", "files_series", "rss_mb_series"):
            print(f"{key:>24}: {value}")
    print(json.dumps(result))
    if not all(result["passed"].values()):
        raise SystemExit(f"soak failed: {result['passed']}")
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
