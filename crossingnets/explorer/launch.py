"""`crossingnets app`: load a checkpoint and serve the latent-space explorer (Gradio), offline.

Usage:
    crossingnets app [--checkpoint checkpoints/cn-nyu-synth] [--host 127.0.0.1] [--port 7860] [--share]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CHECKPOINT = REPO_ROOT / "checkpoints" / "cn-nyu-synth"
MAX_UPLOAD = "64mb"  # Gradio's own guard; the explorer rejects files above 16 MB with its message
CONCURRENCY = 4  # requests run at once per event; torch inference is thread-safe in eval mode
# One torch thread per request: requests run in parallel on the cores, and intra-op threads would
# contend with them (benchmarks/infer.py measured 2-thread batch-1 inference 27x slower under load).
TORCH_THREADS = 1
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def offline() -> None:
    """No analytics, telemetry or hub access (set before Gradio is imported; user values win)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def launch_options(host: str, port: int | None, share: bool = False) -> dict[str, Any]:
    """Keyword arguments of `Blocks.launch` for the explorer (shared by the CLI, tests, benchmarks)."""
    return {
        "server_name": host,
        "server_port": port,
        "share": share,
        "max_file_size": MAX_UPLOAD,
        "show_error": False,
        "run_history": False,  # record nothing, offer no remote store: the app runs offline
    }


def create_app(checkpoint: str | os.PathLike):
    """Load `checkpoint` and build the explorer's Blocks (queued), without launching it."""
    offline()
    import torch
    from crossingnets_app.ui import EXAMPLES_DIR, build_demo

    from crossingnets.explorer.views import Explorer

    torch.set_num_threads(TORCH_THREADS)
    demo = build_demo(Explorer.load(checkpoint, EXAMPLES_DIR))
    return demo.queue(default_concurrency_limit=CONCURRENCY)


@contextlib.contextmanager
def running_app(
    checkpoint: str | os.PathLike, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[str]:
    """Serve the explorer in this process (a free port if none is given) for tests and benchmarks;
    yields its URL and closes the server on exit."""
    demo = create_app(checkpoint)
    if port is None:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    demo.launch(**launch_options(host, port), prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://{host}:{port}/"
    finally:
        demo.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=BUNDLED_CHECKPOINT,
        help="released-weights folder (default: the bundled one)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: loopback only)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)"
    )
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (off)")


def main(args: argparse.Namespace) -> int:
    if not (Path(args.checkpoint) / "config.json").is_file():
        raise SystemExit(
            f"no model at {args.checkpoint}: expected a released-weights folder with config.json"
        )
    try:
        demo = create_app(args.checkpoint)
    except ValueError as err:  # a model the explorer cannot show: say why, no traceback
        raise SystemExit(str(err)) from None
    demo.launch(**launch_options(args.host, args.port, args.share))
    return 0
