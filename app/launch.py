"""`crossingnets app`: load a checkpoint and serve the latent-space explorer (Gradio), offline.

Usage:
    crossingnets app [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share] [--file-lifetime 600]
Without --checkpoint it serves the bundled model (`bundled_checkpoint`). It listens on the loopback
interface only unless --host says otherwise, and then says who can reach it. Uploads and the files
it returns are deleted once older than --file-lifetime seconds (checked every minute), so a server
that runs for days keeps a bounded temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUNDLED_MODEL = "cn-nyu-synth"  # the folder under the repository's checkpoints/
MAX_UPLOAD = "64mb"  # Gradio's own guard; the explorer rejects files above 16 MB with its message
CONCURRENCY = 4  # requests run at once per event; torch inference is thread-safe in eval mode
# One torch thread per request: requests run in parallel on the cores, and intra-op threads would
# contend with them (benchmarks/infer.py measured 2-thread batch-1 inference 27x slower under load).
TORCH_THREADS = 1
FILE_LIFETIME_S = 600  # uploads and returned files are kept 10 minutes: time to download them
CLEANUP_EVERY_S = 60
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def bundled_checkpoint() -> Path:
    """The folder of the bundled model, wherever this package was installed from.

    A wheel carries it as package data, `crossingnets_app/checkpoints/` (pyproject.toml); a
    source checkout (an editable install, the tests) has it in `checkpoints/` beside `app/`.
    When neither holds a config.json, the wheel's place is returned, and `main` says no model
    is there.
    """
    package = Path(__file__).resolve().parent
    installed = package / "checkpoints" / BUNDLED_MODEL
    checkout = package.parent / "checkpoints" / BUNDLED_MODEL
    for folder in (installed, checkout):
        if (folder / "config.json").is_file():
            return folder
    return installed


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


def exposure_warning(host: str, share: bool) -> str | None:
    """What the person starting the app must know when it can be reached from other machines."""
    reach = []
    if host not in LOOPBACK:
        reach.append(f"every machine that can reach this one on {host!r} (--host)")
    if share:
        reach.append("anyone with the public share link (--share)")
    if not reach:
        return None
    return (
        f"the app is served to {' and to '.join(reach)}, without authentication: they can upload files "
        "and run the model. Use the default --host 127.0.0.1 to keep it on this machine."
    )


def create_app(
    checkpoint: str | os.PathLike,
    file_lifetime_s: int = FILE_LIFETIME_S,
    temp_dir: str | os.PathLike | None = None,
    refine_iterations: int | None = None,
):
    """Load `checkpoint` and build the explorer's Blocks (queued), without launching it; uploads and
    returned files older than `file_lifetime_s` are deleted on a schedule once it is launched;
    `refine_iterations`: the upload tab's (`ExplorerConfig.refine_iterations`; None: the model's).

    They live in `temp_dir`, by default a new private folder: servers sharing Gradio's one
    /tmp/gradio cache delete each other's files on their schedules and then answer 403 for them.
    """
    offline()
    os.environ["GRADIO_TEMP_DIR"] = str(temp_dir or tempfile.mkdtemp(prefix="crossingnets-app-"))
    import torch

    from crossingnets.explorer.space import Explorer, ExplorerConfig
    from crossingnets_app.memory import tune_heap
    from crossingnets_app.ui import EXAMPLES_DIR, build_demo

    torch.set_num_threads(TORCH_THREADS)
    tune_heap()  # before the request threads allocate (crossingnets_app.memory)
    explorer = Explorer.load(checkpoint, EXAMPLES_DIR, ExplorerConfig(refine_iterations=refine_iterations))
    demo = build_demo(explorer, file_lifetime_s=file_lifetime_s)
    demo.delete_cache = (min(CLEANUP_EVERY_S, file_lifetime_s), file_lifetime_s)  # read when launched
    return demo.queue(default_concurrency_limit=CONCURRENCY)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server started next."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_subprocess(
    cmd: list[str], port: int, env: dict[str, str] | None = None, startup_s: float = 300.0, **output: Any
) -> Iterator[subprocess.Popen]:
    """`cmd`, a command serving the app on 127.0.0.1:`port`, in a child process (`output`: Popen's
    stdout / stderr); yields the process once the app answers, then stops it (terminate, kill after 30 s)."""
    proc = subprocess.Popen(cmd, env=env, **output)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd)} exited with code {proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the app did not answer within {startup_s:.0f} s") from None
                time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_app(
    checkpoint: str | os.PathLike, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[str]:
    """Serve the explorer in this process (a free port if none is given) for tests and benchmarks;
    yields its URL and closes the server on exit."""
    temp_dir = tempfile.mkdtemp(prefix="crossingnets-app-")
    demo = create_app(checkpoint, temp_dir=temp_dir)
    if port is None:
        port = free_port(host)
    demo.launch(**launch_options(host, port), prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://{host}:{port}/"
    finally:
        demo.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=bundled_checkpoint(),
        help="released-weights folder (default: the bundled one, %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: loopback only)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)"
    )
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (off)")
    parser.add_argument(
        "--file-lifetime",
        type=int,
        default=FILE_LIFETIME_S,
        help="seconds uploads and returned files are kept before deletion (default %(default)s)",
    )
    parser.add_argument(
        "--refine-iterations",
        type=int,
        default=None,
        help="the upload tab's refinement by the generator (default: the model's, 40 for the bundled "
        "one; 0: the network's estimate, ~10x cheaper and ~2.5 mm less accurate)",
    )


def main(args: argparse.Namespace) -> int:
    if not (Path(args.checkpoint) / "config.json").is_file():
        raise SystemExit(
            f"no model at {args.checkpoint}: expected a released-weights folder with config.json"
        )
    if args.file_lifetime < 1:
        raise SystemExit(f"--file-lifetime must be at least 1 second, got {args.file_lifetime}")
    if args.refine_iterations is not None and args.refine_iterations < 0:
        raise SystemExit(f"--refine-iterations must be 0 or more, got {args.refine_iterations}")
    own_temp = os.environ.get("GRADIO_TEMP_DIR")  # the user's folder is kept; a private one is not
    temp_dir = own_temp or tempfile.mkdtemp(prefix="crossingnets-app-")
    try:
        try:
            demo = create_app(args.checkpoint, args.file_lifetime, temp_dir, args.refine_iterations)
        except ValueError as err:  # a model the explorer cannot show: say why, no traceback
            raise SystemExit(str(err)) from None
        if warning := exposure_warning(args.host, args.share):
            log.warning("%s", warning)
        demo.launch(**launch_options(args.host, args.port, args.share))
    finally:
        if not own_temp:
            shutil.rmtree(temp_dir, ignore_errors=True)
    return 0
