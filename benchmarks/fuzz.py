"""A long fuzz run: the fuzz tests (`tests/test_fuzz_*.py`) with many fresh random inputs each.

Runs pytest on them with `CROSSINGNETS_FUZZ_EXAMPLES=N` (fresh inputs, each held to a deadline:
see tests/fuzzing.py), the process's address space capped (`--memory-gb`, so an input that makes
a reader allocate without bound fails with MemoryError instead of going unnoticed), and Hypothesis'
statistics, from which it counts per test the inputs tried and the inputs that failed (an
exception other than the project's clear errors, a hang, too much memory, a wrong result).

Usage: python benchmarks/fuzz.py [--examples 2000] [--memory-gb 8] [tests/test_fuzz_depth_files.py ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATS = re.compile(r"(\d+) passing examples?, (\d+) failing examples?, (\d+) invalid examples?")


def parse_statistics(output: str) -> dict[str, dict[str, int]]:
    """Per test (pytest node id): passing, failing and invalid examples over all phases."""
    tests: dict[str, dict[str, int]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("tests/") and "::" in line and line.rstrip().endswith(":"):
            current = line.rstrip()[:-1]
            tests[current] = {"passing": 0, "failing": 0, "invalid": 0}
        elif current and (m := STATS.search(line)):
            for key, value in zip(("passing", "failing", "invalid"), m.groups(), strict=True):
                tests[current][key] += int(value)
    return tests


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="*", help="fuzz test files (default: tests/test_fuzz_*.py)")
    parser.add_argument("--examples", type=int, default=2000, help="inputs per test")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="address-space cap of the run")
    return parser


def main(args: argparse.Namespace) -> dict:
    tests = args.tests or sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_fuzz_*.py"))
    cap = int(args.memory_gb * 2**30)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryDirectory() as tmp:  # Hypothesis writes failing examples' patches here
        env = {**os.environ, "CROSSINGNETS_FUZZ_EXAMPLES": str(args.examples), "HYPOTHESIS_STORAGE_DIRECTORY": tmp,
               "OMP_NUM_THREADS": "1"}  # fmt: skip
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
               "-W", "ignore::DeprecationWarning", "-W", "ignore::RuntimeWarning", *tests]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, preexec_fn=limit_memory)
        seconds = time.perf_counter() - start
    per_test = parse_statistics(done.stdout)
    failed = re.findall(r"^FAILED (\S+)", done.stdout, re.MULTILINE)
    result = {
        "examples_per_test": args.examples,
        "memory_cap_gb": args.memory_gb,
        "tests": per_test,
        "inputs": sum(t["passing"] + t["failing"] for t in per_test.values()),
        "failing_inputs": sum(t["failing"] for t in per_test.values()),
        "failed_tests": failed,
        "pytest_exit": done.returncode,
        "seconds": round(seconds, 1),
    }
    for name, t in per_test.items():
        print(f"{name:>80}: {t['passing']} passing, {t['failing']} failing, {t['invalid']} invalid")
    if failed:
        print(done.stdout[-6000:])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
