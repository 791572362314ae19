"""Library functions stay short enough to read in one screen.

A function over :data:`MAX_LINES` lines (from ``def`` to its last line) fails this test unless it is in
:data:`ALLOWED`, with the reason it reads better whole. A long function is usually several named steps.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("configs", "robots", "deploy", "sim", "learning", "unio4")
MAX_LINES = 60

# "path:qualified name" -> why it stays long.
ALLOWED: dict[str, str] = {}


def long_functions() -> dict[str, int]:
    """Every library function (methods and nested functions included) over MAX_LINES, with its length."""
    found: dict[str, int] = {}
    for top in LIBRARY:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.parts[0] == "unio4" and len(rel.parts) > 2 and rel.parts[1] in LIBRARY:
                continue  # unio4/<layer> are links to the top-level folders: each file once
            _collect(ast.parse(path.read_text()), str(rel), "", found)
    return found


def _collect(node: ast.AST, where: str, prefix: str, found: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef) and child.end_lineno is not None:
                length = child.end_lineno - child.lineno + 1
                if length > MAX_LINES:
                    found[f"{where}:{name}"] = length
            _collect(child, where, f"{name}.", found)


def test_no_library_function_is_longer_than_a_screen() -> None:
    found = long_functions()
    new = {name: n for name, n in found.items() if name not in ALLOWED}
    assert not new, f"functions over {MAX_LINES} lines (split into named steps, or allow with a reason): {new}"


def test_the_allow_list_names_only_functions_that_are_still_long() -> None:
    stale = sorted(set(ALLOWED) - set(long_functions()))
    assert not stale, f"no longer over {MAX_LINES} lines, drop from ALLOWED: {stale}"
    assert all(reason.strip() for reason in ALLOWED.values())
