"""Mutation testing: do the tests catch a silent bug? A small AST mutation runner (mutmut and
cosmic-ray are not installable here).

Each mutant changes one thing in one module: an arithmetic operator (+ -, * /, // %, ** *), a
comparison (< <=, > >=, == !=, is / is not, in / not in), a boolean operator (and or), a numeric
constant (+1 and -1), or a returned value (None). Annotations, docstrings and logging calls are left
alone (their mutants cannot change behaviour). The mutant is written into a copy of the checkout
(the working tree is never touched) and that module's fast tests run against it: a failing or
timed-out run kills the mutant, a passing one lets it survive. Reported per module: mutants,
killed, the share killed, and each survivor (line, before -> after), the gaps tests should close.

Usage: python benchmarks/mutation.py [--modules metrics camera ...] [--max-mutants N] [--seed 0]
       python benchmarks/mutation.py --modules metrics          (the smoke run)
       python benchmarks/mutation.py --modules metrics --tests tests/test_metrics.py   (other tests)
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from crossingnets.files import SHARED_DATA_ENV, shared_data_dir

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    module: str  # path of the module in the checkout
    tests: tuple[str, ...]  # its fast tests
    functions: tuple[str, ...] = ()  # only these functions and methods (all if empty)


# The modules where a silent bug does the most harm, each with the fast tests that cover it.
TARGETS = {
    "metrics": Target("crossingnets/metrics.py", ("tests/test_metrics.py", "tests/test_mutants_metrics.py")),
    "camera": Target(
        "crossingnets/camera.py",
        ("tests/test_mutants_camera.py", "tests/test_crop_geometry.py", "tests/test_camera_presets.py"),
        ("__post_init__", "uvd_to_xyz", "xyz_to_uvd", "scaled", "mirrored"),
    ),
    "preprocess": Target(
        "crossingnets/data/preprocess.py",
        ("tests/test_preprocess.py", "tests/test_crop_geometry.py", "tests/test_fast_preprocess.py"),
    ),
    "losses": Target("crossingnets/losses.py", ("tests/test_losses.py",)),
    "trainer": Target(
        "crossingnets/trainer.py",
        ("tests/test_resume.py", "tests/test_validation.py"),
        ("state_dict", "load_state_dict", "_reestimate_and_validate", "_sync_buffers", "_write_metrics", "_keep_lines"),
    ),
    "validation": Target("crossingnets/validation.py", ("tests/test_validation.py",)),
    "inference": Target(
        "crossingnets/inference.py",
        ("tests/test_inference.py", "tests/test_given_center.py", "tests/test_handedness.py",
         "tests/test_rotation.py", "tests/test_golden.py"),
    ),
    "upload": Target(
        "crossingnets/explorer/upload.py",
        ("tests/test_upload_values.py", "tests/test_given_center.py", "tests/test_fuzz_upload.py"),
    ),
}  # fmt: skip

BINARY_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                ast.FloorDiv: ast.Mod, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}  # fmt: skip
COMPARE_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                 ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}  # fmt: skip
BOOL_SWAPS = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class Mutant:
    index: int  # position of the mutated node in the module's walk
    line: int
    before: str
    after: str


def skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes no mutant should touch: annotations, docstrings, logging calls."""
    skip: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip += [a.annotation for a in [*node.args.args, *node.args.kwonlyargs] if a.annotation]
            skip += [node.returns] if node.returns else []
        if isinstance(node, ast.AnnAssign):
            skip.append(node.annotation)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.append(node)  # docstrings
        if isinstance(node, ast.Call) and ast.unparse(node.func).startswith(
            ("log.", "logging.", "warnings.")
        ):
            skip.append(node)
    return {id(n) for s in skip for n in ast.walk(s)}


def in_functions(tree: ast.Module, names: tuple[str, ...]) -> set[int] | None:
    """ids of the nodes inside the named functions and methods (None: every node)."""
    if not names:
        return None
    return {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name in names
        for n in ast.walk(f)
    }


def mutations(node: ast.AST) -> Iterator[ast.AST]:
    """The mutated copies of one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY_SWAPS:
        yield ast.BinOp(node.left, BINARY_SWAPS[type(node.op)](), node.right)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE_SWAPS:
        yield ast.Compare(node.left, [COMPARE_SWAPS[type(node.ops[0])]()], node.comparators)
    elif isinstance(node, ast.BoolOp):
        yield ast.BoolOp(BOOL_SWAPS[type(node.op)](), node.values)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield from (ast.Constant(node.value + 1), ast.Constant(node.value - 1))
    elif (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        yield ast.Return(ast.Constant(None))


def enumerate_mutants(source: str, functions: tuple[str, ...]) -> list[tuple[Mutant, str]]:
    """Every mutant of a module: (what it changes, the mutated source)."""
    tree = ast.parse(source)
    skip, inside = skipped_nodes(tree), in_functions(tree, functions)
    out = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip or (inside is not None and id(node) not in inside):
            continue
        for k, mutated in enumerate(mutations(node)):
            new_tree = copy.deepcopy(tree)
            target = list(ast.walk(new_tree))[index]
            replace_node(new_tree, target, ast.copy_location(mutated_like(mutated, target), target))
            text = ast.unparse(new_tree)
            out.append((Mutant(index * 2 + k, node.lineno, ast.unparse(node), ast.unparse(mutated)), text))
    return out


def mutated_like(mutated: ast.AST, target: ast.AST) -> ast.AST:
    """The mutation rebuilt on the copied tree's children (the node's own fields, deep-copied)."""
    fresh = copy.deepcopy(mutated)
    for field in ("left", "right", "comparators", "values"):
        if hasattr(target, field) and hasattr(fresh, field):
            setattr(fresh, field, getattr(target, field))
    return fresh


def replace_node(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                value[[i for i, v in enumerate(value) if v is old][0]] = new
                return
    raise ValueError("node not in tree")


def copy_checkout(dst: Path) -> None:
    """What the tests need: the package, the tests, the app (examples) and pytest's configuration."""
    for name in ("crossingnets", "tests", "app"):
        shutil.copytree(
            REPO / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc")
        )
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    (dst / "checkpoints").symlink_to(REPO / "checkpoints")


def run_tests(work: Path, tests: tuple[str, ...], timeout_s: float) -> str:
    """'passed', 'failed' or 'timeout' for the tests against the copy at `work`."""
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           SHARED_DATA_ENV: str(shared_data_dir())}  # fmt: skip
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if done.returncode == 0 else "failed"


def mutate_module(work: Path, target: Target, max_mutants: int | None, rng: random.Random) -> dict:
    path = work / target.module
    original = path.read_text()
    tests = tuple(t for t in target.tests if (work / t).exists())
    start = time.perf_counter()
    if run_tests(work, tests, 1800) != "passed":
        raise RuntimeError(f"the tests {tests} fail on the unmutated {target.module}")
    timeout_s = 3 * (time.perf_counter() - start) + 30
    mutants = enumerate_mutants(original, target.functions)
    if max_mutants is not None and len(mutants) > max_mutants:
        mutants = sorted(rng.sample(mutants, max_mutants), key=lambda m: m[0].index)
    results = {"killed": 0, "survived": [], "timeout": 0}
    try:
        for mutant, text in tqdm(mutants, desc=target.module, unit="mutant"):
            path.write_text(text)
            outcome = run_tests(work, tests, timeout_s)
            if outcome == "passed":
                results["survived"].append(f"line {mutant.line}: {mutant.before} -> {mutant.after}")
            else:
                results["killed"] += 1
                results["timeout"] += outcome == "timeout"
    finally:
        path.write_text(original)
    n = len(mutants)
    return {
        "module": target.module,
        "tests": list(tests),
        "functions": list(target.functions),
        "mutants": n,
        "killed": results["killed"],
        "killed_by_timeout": results["timeout"],
        "killed_share": round(results["killed"] / n, 3) if n else None,
        "survivors": results["survived"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--max-mutants", type=int, default=None, help="a random sample per module")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tests", nargs="+", help="run these tests instead of the modules' own (one module)")
    return parser


def main(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crossingnets-mutation-") as work:
        copy_checkout(Path(work))
        targets = [TARGETS[m] for m in args.modules]
        if args.tests:
            if len(targets) != 1:
                raise SystemExit("--tests needs exactly one of --modules")
            targets = [replace(targets[0], tests=tuple(args.tests))]
        modules = [mutate_module(Path(work), t, args.max_mutants, rng) for t in targets]
    for m in modules:
        print(
            f"{m['module']:>36}: {m['killed']}/{m['mutants']} killed ({m['killed_share']}), {m['seconds']} s"
        )
        for survivor in m["survivors"]:
            print(f"{'':>38}survived {survivor}")
    result = {"modules": modules}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
