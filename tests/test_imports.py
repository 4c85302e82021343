"""Imports point down (STYLE.md): the import graph of crossingnets/, drawn from the source.

Nothing is imported: every module is parsed with `ast`, and each `import` becomes an edge, at
module level or inside a function (a lazy import is still an arrow). Rules: no cycle; the models
reach nothing of data, training, inference or the explorer; the dataset readers never reach the
`convert` command; reading one uploaded depth file pulls in neither `convert` nor HDF5, MATLAB
or progress-bar libraries; nothing in the library imports the app. `cli.py` names its
subcommands' modules as strings, imported on demand: that lazy table is not an edge.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"crossingnets": REPO / "crossingnets", "crossingnets_app": REPO / "app"}  # name -> folder


@dataclass(frozen=True)
class Edge:
    source: str
    target: str  # a module of ours, or an external one (`h5py`, `scipy.io`)
    line: int
    lazy: bool  # inside a function: runs when called, not when the module is imported


def module_names(packages: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages."""
    modules = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_edges(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    """The imports of one module; `from pkg import sub` points at the submodule where one exists,
    and at `pkg.name` for an external package (so `from scipy import io` is `scipy.io`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                edges.extend(Edge(name, a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                internal = base.split(".")[0] in PACKAGES
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in modules or not internal and alias.name != "*" else base
                    edges.append(Edge(name, target, child.lineno, lazy))
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), lazy=False)
    return edges


def import_graph(packages: dict[str, Path] = PACKAGES) -> tuple[dict[str, Path], list[Edge]]:
    modules = module_names(packages)
    return modules, [e for name, path in modules.items() for e in import_edges(name, path, modules)]


def is_within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def reached(start: str, edges: list[Edge], modules: dict[str, Path], lazy: bool) -> dict[str, list[str]]:
    """Every module importing `start` runs (with `lazy`, also what its functions import), each with
    the chain of imports that gets there. Importing `a.b.c` also runs packages `a` and `a.b`."""
    out_of: dict[str, list[str]] = {}
    for e in edges:
        if lazy or not e.lazy:
            out_of.setdefault(e.source, []).append(e.target)
    chains = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        for target in out_of.get(module, []):
            parts = target.split(".")
            for t in [".".join(parts[:i]) for i in range(1, len(parts))] + [target]:
                if t not in chains and (t in modules or t == target):
                    chains[t] = [*chains[module], t]
                    if t in modules:
                        todo.append(t)
    return chains


def cycles(edges: list[Edge], within: str) -> list[list[str]]:
    """One cycle through each strongly connected group of `within`'s modules (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if is_within(e.source, (within,)) and is_within(e.target, (within,)) and e.source != e.target:
            graph.setdefault(e.source, set()).add(e.target)
            graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_through(min(group), graph, group) for group in groups]


def _cycle_through(first: str, graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle from `first` back to itself inside its group (breadth first)."""
    came_from: dict[str, str | None] = {first: None}
    queue = deque([first])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & group):
            if w == first:
                chain = [v]
                while (previous := came_from[chain[-1]]) is not None:
                    chain.append(previous)
                return [*reversed(chain), first]
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    raise AssertionError(f"{first} is in no cycle")  # a group of Tarjan's always holds one


def describe(chain: list[str]) -> str:
    return " -> ".join(chain)


MODULES, EDGES = import_graph()
LIBRARY_EDGES = [
    e for e in EDGES if is_within(e.source, ("crossingnets",)) and e.source != "crossingnets.cli"
]
READERS = ("crossingnets.data.nyu", "crossingnets.data.icvl", "crossingnets.data.msra")


def test_the_graph_is_drawn_from_every_module():
    assert {"crossingnets.cli", "crossingnets.data.raw", "crossingnets_app.launch", *READERS} <= set(MODULES)
    assert any(
        e.source == "crossingnets.data.convert" and e.target == "crossingnets.data.raw" and not e.lazy
        for e in EDGES
    )


def test_the_checker_finds_a_planted_cycle_a_lazy_import_and_relative_imports(tmp_path):
    pkg = tmp_path / "crossingnets"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import a\n")
    (pkg / "sub" / "a.py").write_text("from crossingnets.sub.b import X\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..sub import a\n    import h5py\nX = 1\n")
    (pkg / "c.py").write_text("from scipy import io\nfrom crossingnets.sub import b\n")
    modules, edges = import_graph({"crossingnets": pkg})
    assert cycles(edges, "crossingnets") == [
        ["crossingnets.sub.a", "crossingnets.sub.b", "crossingnets.sub.a"]
    ]
    assert {(e.target, e.lazy) for e in edges if e.source == "crossingnets.sub.b"} == {
        ("crossingnets.sub.a", True),
        ("h5py", True),
    }
    eager = reached("crossingnets.c", edges, modules, lazy=False)
    assert {"scipy.io", "crossingnets.sub", "crossingnets.sub.a"} <= set(eager) and "h5py" not in eager
    assert "h5py" in reached("crossingnets.c", edges, modules, lazy=True)


def test_no_import_cycle_in_the_library():
    found = cycles(LIBRARY_EDGES, "crossingnets")
    assert not found, "import cycles:\n" + "\n".join(describe(c) for c in found)


def test_models_reach_nothing_of_data_training_inference_or_the_explorer():
    above = ("crossingnets.data", "crossingnets.train", "crossingnets.inference", "crossingnets.explorer")
    wrong = [
        describe(chain)
        for module in MODULES
        if is_within(module, ("crossingnets.models",))
        for target, chain in reached(module, LIBRARY_EDGES, MODULES, lazy=True).items()
        if is_within(target, above)
    ]
    assert not wrong, "models import what is above them:\n" + "\n".join(sorted(set(wrong)))


@pytest.mark.parametrize("reader", READERS)
def test_readers_do_not_import_the_convert_command(reader):
    chains = reached(reader, LIBRARY_EDGES, MODULES, lazy=True)
    assert "crossingnets.data.convert" not in chains, describe(chains["crossingnets.data.convert"])


def test_reading_one_depth_file_pulls_in_no_converter_hdf5_matlab_or_progress_bar():
    heavy = ("crossingnets.data.convert", "h5py", "scipy.io", "tqdm")
    chains = reached("crossingnets.data.depth_file", LIBRARY_EDGES, MODULES, lazy=False)
    wrong = [describe(chain) for target, chain in chains.items() if is_within(target, heavy)]
    assert not wrong, "importing depth_file imports:\n" + "\n".join(wrong)


def test_the_library_never_imports_the_app():
    wrong = [
        f"{MODULES[e.source].relative_to(REPO)}:{e.line} imports {e.target}"
        for e in EDGES
        if is_within(e.source, ("crossingnets",)) and is_within(e.target, ("crossingnets_app", "app"))
    ]
    assert not wrong, "\n".join(wrong)
