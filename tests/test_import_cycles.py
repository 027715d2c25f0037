"""No module under `hotline` imports itself back through others: the engine is layered.

The graph counts every import statement that runs: at a module's top and inside functions
(the deferred imports that once hid the handover <-> session cycle). Imports under
`if TYPE_CHECKING:` never run; they let a feature module name the language server's state
type, which imports the features, without an import at run time.
Importing `a.b.c` runs the packages `a` and `a.b` first, so each import is an edge to
those packages too; `from a.b import c` is an edge to the submodule `a.b.c` when there is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hotline


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package at `root`, by its dotted name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    """The dotted names an import statement in module `name` may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's own package, one level up per dot past the first
        package = name.split(".") if is_package else name.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    return [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]


def _running_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree, function bodies and `if` blocks included, except
    those under `if TYPE_CHECKING:`, which never run."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (and the packages those are in)."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _running_imports(tree):
            for target in _imported(node, name, path.name == "__init__.py"):
                parts = target.split(".")
                # the module itself and the packages it is in; `from a import b`'s b if a module
                loaded = {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()
                graph[name] |= loaded - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """One cycle per strongly connected group of modules, as the path a -> ... -> a, with
    the group's modules (a longer cycle may pass through those the path does not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(_cycle_in(graph, group), sorted(group)) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest path from the group's first module back to itself, within the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle in {group}")


def test_hotline_has_no_import_cycle() -> None:
    root = Path(hotline.__file__).parent
    graph = import_graph(root, "hotline")
    assert "hotline.engine.session" in graph  # the package found is the one with the engine
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(
        f"{' -> '.join(path)} (the modules in this cycle group: {', '.join(group)})" for path, group in found
    )


def test_the_graph_sees_each_kind_of_import(tmp_path: Path) -> None:
    """A deferred `from pkg.sub import mod` closing a cycle, and a relative import, are found;
    an import under `if TYPE_CHECKING:` is not."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "top.py").write_text("from pkg.sub import low\n")
    (root / "sub" / "low.py").write_text("def f():\n    from pkg import top\n")
    (root / "sub" / "side.py").write_text("from . import low\nfrom .. import top\n")
    (root / "hint.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg import top\n"
    )
    graph = import_graph(root, "pkg")
    assert graph["pkg.hint"] == set()
    assert graph["pkg.sub.side"] == {"pkg", "pkg.sub", "pkg.sub.low", "pkg.top"}
    assert cycles(graph) == [(["pkg.sub.low", "pkg.top", "pkg.sub.low"], ["pkg.sub.low", "pkg.top"])]
