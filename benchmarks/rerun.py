"""The idle-machine rerun: every speed benchmark of BENCHMARKS.md's idle table, one after another.

Speed figures are only comparable when nothing else runs; this runs the commands of the table in
one sequence, prints the load average before and after each (a figure taken above
`--max-load` is flagged, not hidden), keeps each benchmark's whole output in OUT/NAME.log and its
last JSON line in OUT/NAME.json, and ends with one JSON object: per benchmark its wall time, the
load averages and its figures.

    python benchmarks/rerun.py --out runs/rerun [--only infer render] [--quick]

--quick runs each benchmark briefly (a check that the sequence works, not figures).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoints/cn-nyu-synth"

# name -> (command of the full run, command of the quick check), each run from the repository root.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "infer": (
        f"benchmarks/infer.py --seconds 3 --checkpoint {CHECKPOINT}",
        f"benchmarks/infer.py --seconds 0.2 --checkpoint {CHECKPOINT}",
    ),
    "render": ("benchmarks/render.py", "benchmarks/render.py --frames 64 --embree-frames 2"),
    "train_feed": ("benchmarks/train_feed.py", "benchmarks/train_feed.py --steps 2 --warmup 1"),
    "train": (
        "benchmarks/train.py --threads 2 --steps 3 --variants fp32 channels_last",
        "benchmarks/train.py --threads 2 --steps 1 --warmup 0",
    ),
    "train_bf16": (
        "benchmarks/train.py --threads 2 --steps 1 --warmup 1 --variants fp32 bf16",
        "benchmarks/train.py --threads 2 --steps 1 --warmup 0 --variants bf16",
    ),
    "ik_real": ("benchmarks/ik_real.py", "benchmarks/ik_real.py --limit 20"),
    "app": ("benchmarks/app.py", "benchmarks/app.py --clients 2 --requests 2 --repeats 3"),
}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def last_json(text: str) -> dict | None:
    """The benchmark's figures: its last stdout line, when that is a JSON object."""
    lines = text.strip().splitlines()
    try:
        value = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def run_one(name: str, argv: list[str], out: Path, max_load: float) -> dict:
    before = load_average()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (out / f"{name}.log").write_text(done.stdout + done.stderr)
    figures = last_json(done.stdout)
    if figures is not None:
        (out / f"{name}.json").write_text(json.dumps(figures, indent=1))
    after = load_average()
    record = {
        "command": "python " + " ".join(argv),
        "returncode": done.returncode,
        "wall_s": round(wall, 1),
        "load_before": before,
        "load_after": after,
        "busy": before > max_load,
        "figures": figures,
    }
    flag = "  (machine busy before it started)" if record["busy"] else ""
    print(f"{name:>12}: rc {done.returncode}, {wall:7.1f} s, load {before} -> {after}{flag}", flush=True)
    return record


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for each benchmark's log and JSON")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="these benchmarks only")
    parser.add_argument("--quick", action="store_true", help="brief runs: check the sequence, no figures")
    parser.add_argument(
        "--max-load", type=float, default=2.0, help="flag a benchmark started above this load"
    )
    return parser


def main(args: argparse.Namespace) -> dict:
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(BENCHMARKS)
    print(f"load average at the start: {load_average()}, cpus: {len(os.sched_getaffinity(0))}", flush=True)
    results = {
        name: run_one(name, BENCHMARKS[name][args.quick].split(), args.out, args.max_load) for name in names
    }
    result = {"quick": args.quick, "cpus": len(os.sched_getaffinity(0)), "benchmarks": results}
    (args.out / "rerun.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
