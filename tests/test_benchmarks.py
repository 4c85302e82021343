"""Every benchmark has one shape, read from its source (nothing is run): `get_args_parser()` and
`main(args)` behind a `__main__` guard, one JSON line printed by `main`, no environment edited at
import; and the shared data folder is found by the one helper, `crossingnets.files.shared_data_dir`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from benchmark_scripts import load_script

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((REPO / "benchmarks").glob("*.py"))
MAIN_GUARD = 'if __name__ == "__main__":\n    main(get_args_parser().parse_args())'


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _edits_environ(node: ast.AST) -> bool:
    """os.environ[...] = ..., os.environ.update/setdefault/pop(...), os.putenv(...)"""
    for n in ast.walk(node):
        target = n.func if isinstance(n, ast.Call) else n.value if isinstance(n, ast.Subscript) else None
        text = ast.unparse(target) if target is not None else ""
        if (
            text in ("os.putenv", "os.unsetenv")
            or text.startswith("os.environ.")
            and not text.endswith(".get")
        ):
            return True
        if isinstance(n, ast.Subscript) and text == "os.environ" and isinstance(n.ctx, ast.Store | ast.Del):
            return True
    return False


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_shape(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    functions = _functions(tree)
    parser, main = functions.get("get_args_parser"), functions.get("main")
    assert parser is not None and not parser.args.args, "no get_args_parser() without arguments"
    assert main is not None and [a.arg for a in main.args.args] == ["args"], "no main(args)"
    assert ast.dump(tree.body[-1]) == ast.dump(ast.parse(MAIN_GUARD).body[0]), f"must end with {MAIN_GUARD}"
    prints = [
        n
        for n in ast.walk(main)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "print" and "json.dumps" in ast.unparse(n)
    ]
    assert len(prints) == 1, "main prints one JSON line (json.dumps) at its end"
    module_level = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert not any(_edits_environ(n) for n in module_level[:-1]), "os.environ edited at import"


def test_the_shared_data_folder_has_one_helper():
    """Only crossingnets/files.py reads CROSSINGNETS_SHARED_DATA or builds `shared/data`."""
    allowed = {REPO / "crossingnets" / "files.py", Path(__file__).resolve()}  # the helper, this test
    sources = [
        p for folder in ("crossingnets", "app", "benchmarks", "tests") for p in (REPO / folder).rglob("*.py")
    ]
    wrong = [
        str(p.relative_to(REPO))
        for p in sources
        if p not in allowed
        and ('"CROSSINGNETS_SHARED_DATA"' in (text := p.read_text()) or '"shared" / "data"' in text)
    ]
    assert not wrong, f"compute the shared data folder with crossingnets.files.shared_data_dir: {wrong}"


@pytest.mark.parametrize("quick", [False, True])
def test_the_rerun_commands_parse(quick):
    """Every command of the idle-machine rerun names a benchmark and flags it accepts."""
    rerun = load_script("rerun")
    for name, commands in rerun.BENCHMARKS.items():
        script, *flags = commands[quick].split()
        module = load_script(Path(script).stem)
        try:
            module.get_args_parser().parse_args(flags)
        except SystemExit:
            pytest.fail(f"{name}: {script} rejects {flags}")


def test_rerun_reads_a_benchmarks_last_json_line():
    rerun = load_script("rerun")
    assert rerun.last_json('progress\n{"fps": 1.5}\n') == {"fps": 1.5}
    assert rerun.last_json('{"fps": 1.5}\ntraceback\n') is None
    assert rerun.last_json("[1, 2]") is None and rerun.last_json("") is None


def test_the_paper_training_benchmark_times_every_stage() -> None:
    """`benchmarks/train.py --preset paper` (the idle rerun's `train` and `train_bf16`) builds its
    own store: it once read the release branch's and failed before timing anything."""
    train = load_script("train")
    args = train.get_args_parser().parse_args(
        ["--threads", "1", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--variants", "fp32"]
    )
    speeds = train.main(args)["samples_per_s"]["fp32"]
    assert set(speeds) == {"vae", "gan", "joint"} and min(speeds.values()) > 0
