"""No import circles between the project's modules (issue 38, item 4).

Every module under ``core/`` and ``ui/`` is parsed with ``ast`` (nothing is imported) and its
imports of project modules are drawn as a graph, one edge per importing module and imported
module:

- ``import a.b.c`` is an edge to ``a.b.c``; ``from a.b import c`` is an edge to ``a.b.c`` where
  ``c`` is a submodule and to ``a.b`` otherwise; relative imports are resolved the same way.
- A package's ``__init__`` importing (re-exporting) its submodules is an edge from the package
  to each of them.
- Importing ``a.b.c`` first runs the packages ``a`` and ``a.b``: an edge to each of them too,
  except to the importing module's own packages (already running when it is imported).
- Imports under ``if TYPE_CHECKING:`` never run and are left out.

Two graphs are checked. The first holds the imports that run when a module is imported (the
module's top level, class bodies and top-level ``if``/``try`` blocks included). The second adds
the imports written inside functions: an import of a project module moved into a function to
get around a circle is still that circle, only postponed, so it fails here too. (Imports of
heavy optional third-party packages stay inside functions, but they are not project modules and
so are never in either graph.)

Imports of project modules sit at module top, but for the few modules that load a heavy library
as they are imported (`IMPORTED_IN_FUNCTIONS`): they are imported where they are used.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "ui")

#: The project modules imported inside functions, and why: importing them loads a heavy library.
IMPORTED_IN_FUNCTIONS = {
    "core.service.app": "FastAPI and uvicorn, only to serve",
    "core.embedders.bert_layers": "Keras, only to build or load a title model",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every project module by dotted name."""
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((PROJECT / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _imports(nodes: list[ast.AST], in_function: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Each import among ``nodes`` and below, with whether it sits inside a function; those
    under ``if TYPE_CHECKING:`` are left out (its ``else:`` is kept)."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.orelse, in_function)
        else:
            inner = in_function or isinstance(node, FUNCTIONS)
            yield from _imports(list(ast.iter_child_nodes(node)), inner)


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]
) -> set[str]:
    """The project modules one import statement names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    found: set[str] = set()
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in modules:
            found.add(submodule)
        elif source in modules:
            found.add(source)
    return found


def _packages(name: str) -> set[str]:
    """The name and every package above it: ``a.b.c`` → a, a.b, a.b.c."""
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def _with_packages(targets: set[str], importer: str, modules: dict[str, Path]) -> set[str]:
    """The imported modules and the packages importing them runs, less the importer's own."""
    found = set().union(*(_packages(target) for target in targets)) if targets else set()
    return (found & set(modules)) - _packages(importer)


def function_imports() -> list[str]:
    """``module:line -> imported`` for each import of a project module inside a function."""
    modules = project_modules()
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function in _imports([tree], in_function=False):
            targets = _targets(node, name, path.name == "__init__.py", modules) - {name}
            if in_function and targets:
                found.append(f"{name}:{node.lineno} -> {', '.join(sorted(targets))}")
    return found


def import_graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(imports run at import time, those plus imports inside functions) as adjacency sets."""
    modules = project_modules()
    top: dict[str, set[str]] = {name: set() for name in modules}
    every: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, in_function in _imports([tree], in_function=False):
            targets = _with_packages(_targets(node, name, is_package, modules), name, modules)
            every[name] |= targets
            if not in_function:
                top[name] |= targets
    return top, every


def find_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """For each group of two or more modules that import each other (a strongly connected
    component, Tarjan's algorithm): one cycle through it and all its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted((_one_cycle(graph, group), sorted(group)) for group in groups)


def _one_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest cycle through the group's first module (breadth first)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(group)}")


def _describe(cycles: list[tuple[list[str], list[str]]]) -> str:
    lines = []
    for cycle, group in cycles:
        lines.append(" -> ".join(cycle))
        if len(group) >= len(cycle):
            lines.append(f"    (one of the circles among {', '.join(group)})")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return import_graphs()


def test_graph_sees_the_project(graphs: tuple[dict[str, set[str]], dict[str, set[str]]]) -> None:
    top, _ = graphs
    assert "core.engine" in top and "ui" in top
    assert "core.matches" in top["core"]  # a package's re-export is an edge to the submodule


def test_no_import_circles_at_module_level(
    graphs: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    top, _ = graphs
    cycles = find_cycles(top)
    assert not cycles, "import circles:\n" + _describe(cycles)


def test_no_import_circles_through_imports_inside_functions(
    graphs: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    _, every = graphs
    cycles = find_cycles(every)
    assert not cycles, "import circles (counting imports inside functions):\n" + _describe(cycles)


def test_project_imports_sit_at_module_top() -> None:
    inside = [
        line
        for line in function_imports()
        if not set(line.split(" -> ")[1].split(", ")) <= set(IMPORTED_IN_FUNCTIONS)
    ]
    assert not inside, (
        "project modules imported inside functions (import them at module top, or name them "
        "in IMPORTED_IN_FUNCTIONS when importing them loads a heavy library):\n" + "\n".join(inside)
    )


def test_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [(["a", "b", "c", "a"], ["a", "b", "c"])]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
