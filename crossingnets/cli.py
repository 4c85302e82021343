"""The `crossingnets` command: one subcommand per module, each a thin `main(args)`.

Each module named below defines `add_arguments(parser)` and `main(args) -> int | None`; the
module is imported only when its subcommand is chosen (or for `--help`), so one broken or
heavy subcommand never slows the others.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("crossingnets.data.generate", "render synthetic depth hands into an HDF5 store"),
    "convert": (
        "crossingnets.data.convert",
        "convert a raw NYU/ICVL/MSRA dataset into an HDF5 store",
    ),
    "evaluate": (
        "crossingnets.evaluate",
        "mean joint error and success rates, as the community computes them",
    ),
    "train": ("crossingnets.train", "train a Crossing Net (three stages) or a baseline"),
    "pipeline": (
        "crossingnets.pipeline",
        "the release recipe end to end: its stores, then its stages (resumable)",
    ),
    "pseudo-label": (
        "crossingnets.pseudo_labels",
        "a model's estimates on a run's unlabeled frames as labels, where its turned estimates agree",
    ),
    "adapt": ("crossingnets.adapt", "fine-tune a released model to your sensor with your unlabeled frames"),
    "predict": (
        "crossingnets.predict",
        "the 3D hand pose of depth frames (files, folders, globs, .npy sequences) as JSON lines, CSV or uvd",
    ),
    "export-onnx": ("crossingnets.export", "export the inference network to ONNX"),
    "explorer-index": (
        "crossingnets.explorer.index",
        "index training frames and their latents for the explorer's nearest-frames panel",
    ),
    # The UI lives in app/ (installed as crossingnets_app), which the library never imports:
    # this lazy table is the one place that names it.
    "app": ("crossingnets_app.launch", "start the Gradio latent-space explorer"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossingnets", description="Crossing Nets: 3D hand pose from a single depth image."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if wanted is None or name == wanted:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return int(args._main(args) or 0)
    return _torchrun_exit(lambda: int(args._main(args) or 0))


def _torchrun_exit(run: Callable[[], int]) -> NoReturn:
    """Run one torchrun process and end it without the interpreter's teardown. CI saw a rank that
    had finished (group left, everything written) abort in that teardown once in many runs
    ("terminate called without an active exception": a C++ thread object destroyed while joinable),
    and torchrun then reports the whole run as failed. Python tracebacks of every thread go to
    stderr if it aborts anyway (faulthandler)."""
    faulthandler.enable()
    code = run()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
