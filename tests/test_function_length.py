"""Functions stay short (issue 38, item 4): at most `MAX_LINES` lines each, decorators left out
and nested functions counted inside the function that holds them.

Every function and method under ``core/``, ``ui/`` and ``pages/`` and in ``app.py`` is parsed
with ``ast`` (nothing is imported). A longer one fails here with its place and length: split it
into helpers with clear responsibilities rather than raising the limit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SOURCES = ("core", "ui", "pages")
ENTRYPOINT = "app.py"
MAX_LINES = 60

#: Functions allowed past `MAX_LINES`, as "path:name" → the most lines they may have, each
#: with a comment saying why it cannot be split. None is: keep it that way.
ALLOWED: dict[str, int] = {}


def source_files() -> list[Path]:
    files = [path for folder in SOURCES for path in sorted((PROJECT / folder).rglob("*.py"))]
    return [*files, PROJECT / ENTRYPOINT]


def function_lengths(path: Path) -> Iterator[tuple[str, int, int]]:
    """(name, first line, lines) of every function and method in ``path``, nested ones too."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def long_functions() -> dict[str, tuple[int, int]]:
    """Every function over `MAX_LINES` lines: "path:name" → (first line, lines)."""
    found = {}
    for path in source_files():
        where = path.relative_to(PROJECT).as_posix()
        for name, line, lines in function_lengths(path):
            if lines > MAX_LINES:
                found[f"{where}:{name}"] = (line, lines)
    return found


def test_the_scan_sees_every_part_of_the_app() -> None:
    files = {path.relative_to(PROJECT).parts[0] for path in source_files()}
    assert files == {"core", "ui", "pages", "app.py"}
    assert sum(1 for path in source_files() for _ in function_lengths(path)) > 500


def test_no_function_is_longer_than_the_limit() -> None:
    too_long = [
        f"{key.split(':')[0]}:{line} {key.split(':')[1]} has {lines} lines"
        for key, (line, lines) in sorted(long_functions().items())
        if lines > ALLOWED.get(key, MAX_LINES)
    ]
    assert not too_long, (
        f"functions over {MAX_LINES} lines (split them into well-named helpers):\n"
        + "\n".join(too_long)
    )


def test_the_allowed_list_only_names_functions_still_too_long() -> None:
    """A function split since it was listed leaves the list, so it cannot grow back."""
    found = long_functions()
    stale = [key for key in ALLOWED if key not in found]
    assert not stale, f"no longer over {MAX_LINES} lines: remove from ALLOWED: {stale}"
