"""The house keeps its layers: every import points down, and no two modules import each other.

Bottom to top: ``unio4.configs`` and ``unio4.robots`` (presets, their loader, robot descriptions),
``unio4.deploy`` (the robot side, torch-free), ``unio4.sim``, ``unio4.learning``, and the command line
(``unio4.cli``, ``unio4.commands``, ``unio4.demo``). The layers live in the repository's top-level folders
and install as subpackages of ``unio4`` (unio4/<layer> links to them). A module may import its own layer
and any layer below it. Late imports inside functions count: they are imports all the same. Imports under
``if TYPE_CHECKING:`` count for the layers (a type from above is a dependency on above) but not for cycles
(they never run). No module imports a layer by its bare folder name (``import sim``): that would load a
second copy of the module beside ``unio4.sim``'s.

A process a module starts on a project module (``[sys.executable, "-m", "unio4.deploy.rollout", ...]``, the
module's name also through a module-level constant, or ``python -m unio4...`` in one string; docstrings aside)
is a run-time import of that module for both rules, except that a module starting its own package's
``__main__`` (the package as a program) is no cycle. Library code (everything but ``unio4.cli`` and
``unio4.commands``) never starts the command line: a library function is called, or started by its own
module, never reached through ``unio4 <command>``.
"""

from __future__ import annotations

import ast
import itertools
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


LAUNCH = re.compile(r"(?:^|\s)-m\s+(unio4(?:\.\w+)*)")  # "-m unio4.x" inside one string (a shell line)
COMMAND_LINE = ("unio4.cli", "unio4.commands", "unio4.__main__")


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of a module and its classes and functions (text for readers, not launches)."""
    owners = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return {id(n.body[0].value) for n in owners if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module-level ``NAME = "text"`` constants (a ``-m`` target may be spelled through one)."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _text(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The string a node spells: a literal, or a module-level constant's name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return constants.get(node.id) if isinstance(node, ast.Name) else None


def _launched(node: ast.AST, docstrings: set[int], constants: dict[str, str]) -> list[str]:
    """The ``unio4...`` modules one node starts with ``-m``: adjacent items ``"-m", "unio4.x"`` of a list, tuple or
    call, or ``-m unio4.x`` inside a string (an f-string's text parts included)."""
    items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else node.args if isinstance(node, ast.Call) else []
    texts = [_text(x, constants) for x in items]
    found = [b for a, b in itertools.pairwise(texts) if a == "-m" and b is not None and b.split(".")[0] == "unio4"]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
        found += LAUNCH.findall(node.value)
    return found


def launches(modules: dict[str, Path]) -> list[tuple[str, str]]:
    """(module, project module it starts as a process) for every ``-m unio4...`` target a module's code spells."""
    edges = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        docstrings, constants = _docstrings(tree), _constants(tree)
        for node in ast.walk(tree):
            for target in _launched(node, docstrings, constants):
                if f"{target}.__main__" in modules:  # -m on a package runs its __main__
                    target = f"{target}.__main__"
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.append((name, target))
    return edges


def dependencies(modules: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """Every import edge, and every process start as a run-time one."""
    return [*imports(modules), *((a, b, True) for a, b in launches(modules))]


def test_every_import_points_down_the_layers() -> None:
    up = [f"{a} imports {b}" for a, b, _ in dependencies(project_modules()) if layer(b) > layer(a)]
    assert not up, "imports (or processes started with -m) that run up the layers:\n" + "\n".join(sorted(set(up)))


def test_library_code_never_starts_the_command_line() -> None:
    """A library module that ran ``python -m unio4.cli ...`` would depend on the CLI's flags and its error
    lines; it calls the library function (or starts that function's own module) instead."""

    def command_line(module: str) -> bool:
        return any(module == m or module.startswith(f"{m}.") for m in COMMAND_LINE)

    bad = [f"{a} starts {b}" for a, b in launches(project_modules()) if command_line(b) and not command_line(a)]
    assert not bad, "library modules that start the command line as a process:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for a, b, runtime in dependencies(project_modules()):
        own_program = b.endswith(".__main__") and a.rpartition(".")[0] == b.removesuffix(".__main__")  # its package as a program
        if runtime and not b.startswith(f"{a}.") and not own_program:  # nor is a package importing its own submodule
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


def test_the_checker_sees_processes_started_on_project_modules(tmp_path: Path) -> None:
    """A ``-m`` target is an edge whether it is a list item after ``"-m"`` or part of one command string;
    ``-m`` on a package means its ``__main__``; a docstring that shows a command line is not a launch."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "learning").mkdir()
    (tmp_path / "unio4").mkdir()
    for module in ("learning/ppo.py", "unio4/cli.py", "unio4/__init__.py", "unio4/__main__.py"):
        (tmp_path / module).write_text("")
    (tmp_path / "deploy" / "a.py").write_text(
        '"""Run ``python -m unio4.learning.ppo`` by hand."""\nimport sys\n'
        'def f():\n    return [sys.executable, "-m", "unio4.cli", "deploy"], f"{sys.executable} -m unio4.learning.ppo -x"\n'
        'def g():\n    """python -m unio4.cli"""\n    return ("-m", "unio4")\n'
    )
    (tmp_path / "deploy" / "b.py").write_text('import sys\nMODULE = "unio4.cli"\nCMD = [sys.executable, "-m", MODULE]\n')
    assert sorted(launches(project_modules(tmp_path))) == [
        ("unio4.deploy.a", "unio4.__main__"),
        ("unio4.deploy.a", "unio4.cli"),
        ("unio4.deploy.a", "unio4.learning.ppo"),
        ("unio4.deploy.b", "unio4.cli"),
    ]


BARE = re.compile(rf"^\s*(?:from|import)\s+(?:{'|'.join(LAYERS)})(?:\.|\s|$)", re.M)


def test_no_module_imports_a_layer_by_its_folder_name() -> None:
    """``from sim.task import X`` would run sim/task.py a second time as another module than ``unio4.sim.task``."""
    files = [*project_modules().values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")]
    bare = []
    for path in files:
        text = path.read_text()
        bare += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}" for m in BARE.finditer(text)]
    assert not bare, "imports of a layer by its folder name (use unio4.<layer>):\n" + "\n".join(bare)
