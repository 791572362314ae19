"""The house keeps its layers: every import points down, and no two modules import each other.

Bottom to top: ``unio4.configs`` and ``unio4.robots`` (presets, their loader, robot descriptions),
``unio4.deploy`` (the robot side, torch-free), ``unio4.sim``, ``unio4.learning``, and the command line
(``unio4.cli``, ``unio4.commands``, ``unio4.demo``). The layers live in the repository's top-level folders
and install as subpackages of ``unio4`` (unio4/<layer> links to them). A module may import its own layer
and any layer below it. Late imports inside functions count: they are imports all the same. Imports under
``if TYPE_CHECKING:`` count for the layers (a type from above is a dependency on above) but not for cycles
(they never run). No module imports a layer by its bare folder name (``import sim``): that would load a
second copy of the module beside ``unio4.sim``'s.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"configs": 0, "robots": 0, "deploy": 1, "sim": 2, "learning": 3}
CLI = 4  # unio4.cli, unio4.commands, unio4.demo: everything of unio4 that is not a layer


def layer(module: str) -> int:
    """The layer of a project module; the bare ``unio4`` package (a version string) sits at the bottom."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    return LAYERS.get(parts[1], CLI)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every project module by its installed name (``unio4.sim.task``), read from the real folders."""
    modules = {}
    for path in root.glob("*/**/*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] in LAYERS:
            parts = ("unio4", *parts)
        elif parts[0] != "unio4" or (len(parts) > 2 and parts[1] in LAYERS):  # not a package, or a link's copy
            continue
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
    up = [f"{a} imports {b}" for a, b, _ in imports(project_modules()) if layer(b) > layer(a)]
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
        "from typing import TYPE_CHECKING\nfrom . import b\nif TYPE_CHECKING:\n    from unio4.learning import ppo\n"
        "def f():\n    from unio4.learning.ppo import X\n    return X\n"
    )
    (tmp_path / "deploy" / "b.py").write_text("")
    edges = set(imports(project_modules(tmp_path)))
    assert ("unio4.deploy.a", "unio4.learning.ppo", True) in edges  # the late import
    assert ("unio4.deploy.a", "unio4.learning.ppo", False) in edges  # the typing-only one
    assert ("unio4.deploy.a", "unio4.deploy.b", True) in edges
    assert layer("unio4.learning.ppo") > layer("unio4.deploy.a") and layer("unio4.cli") > layer("unio4.learning")


BARE = re.compile(rf"^\s*(?:from|import)\s+(?:{'|'.join(LAYERS)})(?:\.|\s|$)", re.M)


def test_no_module_imports_a_layer_by_its_folder_name() -> None:
    """``from sim.task import X`` would run sim/task.py a second time as another module than ``unio4.sim.task``."""
    files = [*project_modules().values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")]
    bare = []
    for path in files:
        text = path.read_text()
        bare += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}" for m in BARE.finditer(text)]
    assert not bare, "imports of a layer by its folder name (use unio4.<layer>):\n" + "\n".join(bare)
