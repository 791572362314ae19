"""The house keeps its layers: every import points down, and no two modules import each other.

Bottom to top: ``configs`` and ``robots`` (presets, their loader, robot descriptions), ``deploy``
(the robot side, torch-free), ``sim``, ``learning``, ``unio4`` (the command line). A module may
import its own package and any package below it. Late imports inside functions count: they are
imports all the same. Imports under ``if TYPE_CHECKING:`` count for the layers (a type from above
is a dependency on above) but not for cycles (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"configs": 0, "robots": 0, "deploy": 1, "sim": 2, "learning": 3, "unio4": 4}


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for package in LAYERS:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts).removesuffix(".__init__")] = path
    return modules


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(modules: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """(importer, imported project module, runs at run time) for every import statement."""
    edges = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.append((name, target, node.lineno not in typing_only))
    return edges


def test_every_import_points_down_the_layers() -> None:
    up = [f"{a} imports {b}" for a, b, _ in imports(project_modules()) if LAYERS[b.split(".")[0]] > LAYERS[a.split(".")[0]]]
    assert not up, "imports that run up the layers:\n" + "\n".join(sorted(set(up)))


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for a, b, runtime in imports(project_modules()):
        if runtime and not b.startswith(f"{a}."):  # a package importing its own submodule is not a cycle
            graph.setdefault(a, set()).add(b)
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"modules that import each other: {cycles}"


def test_the_checker_sees_late_imports_and_type_only_ones(tmp_path: Path) -> None:
    """The checker itself, on a small tree: a late import inside a function is a run-time edge, one under
    ``TYPE_CHECKING`` is not, and a relative import resolves to its module."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "learning").mkdir()
    (tmp_path / "learning" / "ppo.py").write_text("X = 1\n")
    (tmp_path / "deploy" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nfrom . import b\nif TYPE_CHECKING:\n    from learning import ppo\n"
        "def f():\n    from learning.ppo import X\n    return X\n"
    )
    (tmp_path / "deploy" / "b.py").write_text("")
    edges = set(imports(project_modules(tmp_path)))
    assert ("deploy.a", "learning.ppo", True) in edges  # the late import
    assert ("deploy.a", "learning.ppo", False) in edges  # the typing-only one
    assert ("deploy.a", "deploy.b", True) in edges
