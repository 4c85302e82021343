"""Real kills, many of them: `tests/test_kill_resume.py` with N extra kills per command at random
events and random times (`CROSSINGNETS_KILLS`), over several seeds.

Each round runs the test file once: `train` (tiny preset), `train` under torchrun (2 gloo
processes), `generate` and `convert` are each killed with SIGKILL at their fixed points and at N
random ones, run again (`train --resume`) until they finish, and must end bit for bit where an
uninterrupted run ends, with every file under a final name complete after every kill. Reported
per command: rounds passed, kills, temporary files the kills left behind (never under a final name).

Usage: python benchmarks/kill_resume.py [--kills 10] [--rounds 5] [-k train]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = "tests/test_kill_resume.py"


def run_round(kills: int, seed: int, select: str | None) -> list[dict]:
    """One pytest run of the kill tests; per test: passed, kills, leftovers, seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        env = {
            **os.environ,
            "CROSSINGNETS_KILLS": str(kills),
            "CROSSINGNETS_KILL_SEED": str(seed),
            "OMP_NUM_THREADS": "1",
        }
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS, f"--junitxml={report}",
               "-o", "junit_family=xunit1", "--timeout", "3600", *(["-k", select] if select else [])]  # fmt: skip
        subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        cases = ET.parse(report).getroot().iter("testcase")
        return [
            {
                "test": case.get("name"),
                "passed": case.find("failure") is None and case.find("error") is None,
                "seconds": float(case.get("time", 0)),
                **{p.get("name"): int(p.get("value")) for p in case.iter("property")},
                **({"failure": (case.find("failure").get("message") or "")[:500]} if case.find("failure") is not None else {}),
            }
            for case in cases
            if case.find("skipped") is None
        ]  # fmt: skip


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kills", type=int, default=10, help="random kills per command, on top of the fixed ones"
    )
    parser.add_argument("--rounds", type=int, default=5, help="seeds 0..rounds-1")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset of the commands)")
    return parser


def main(args: argparse.Namespace) -> dict:
    per_test: dict[str, dict] = defaultdict(
        lambda: {"rounds": 0, "passed": 0, "kills": 0, "leftovers": 0, "seconds": 0.0}
    )
    failures = []
    start = time.perf_counter()
    for seed in range(args.rounds):
        for case in run_round(args.kills, seed, args.select):
            t = per_test[case["test"]]
            t["rounds"] += 1
            t["passed"] += case["passed"]
            t["kills"] += case.get("kills", 0)
            t["leftovers"] += case.get("leftovers", 0)
            t["seconds"] = round(t["seconds"] + case["seconds"], 1)
            if not case["passed"]:
                failures.append({"seed": seed, **case})
    result = {
        "kills_per_command": args.kills,
        "rounds": args.rounds,
        "tests": dict(per_test),
        "total_kills": sum(t["kills"] for t in per_test.values()),
        "all_bit_exact": all(t["passed"] == t["rounds"] for t in per_test.values()) and bool(per_test),
        "failures": failures[:5],
        "seconds": round(time.perf_counter() - start, 1),
    }
    for name, t in result["tests"].items():
        print(
            f"{name:>60}: {t['passed']}/{t['rounds']} rounds bit-exact, {t['kills']} kills, {t['leftovers']} temporary files left"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
