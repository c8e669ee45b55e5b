"""Imports point down: the store imports no domain package, and no modules import each other
in a circle at module level.

The imports are read with ``ast``, not by importing, so the test is quick and sees imports in
branches that do not run here. An import inside a function (lazy loading) or under ``if
TYPE_CHECKING:`` takes no part in a cycle, since nothing runs it while the module loads; the
store rule counts every import wherever it stands. ``import a.b.c`` and ``from a.b import c``
(``c`` a module) point at ``a.b.c`` and at the packages above it that the importer is not in:
its own packages are already loading, so an ``__init__`` that gathers its submodules does not
make a cycle with them, while a package entered from outside runs its ``__init__`` first.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "retrain", "dashboard")
STORE = "monitor.store"
ABOVE_THE_STORE = (
    "monitor.drift",
    "monitor.alerts",
    "monitor.webhooks",
    "monitor.config",
    "monitor.server",
    "monitor.commands",
    "retrain",
    "dashboard",
)
CONFIG = "monitor.config"
ABOVE_THE_CONFIG = (STORE, *(p for p in ABOVE_THE_STORE if p != CONFIG))


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target, where it stands, and whether it runs at load time."""

    source: str
    target: str
    line: int
    at_load: bool


def module_names(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root`` by dotted name (a package by its own)."""
    names: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], at_load: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Each statement with whether it runs while the module loads."""
    for node in body:
        yield node, at_load
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(node.body, False)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _statements(node.body, False)
            yield from _statements(node.orelse, at_load)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, [])
                yield from _statements([c for c in children if isinstance(c, ast.AST)], at_load)


def _base(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = source.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def imports_of(source: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """The imports of one module that name a module of ``known``, resolved to the most exact one."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node, at_load in _statements(tree.body, True):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(source, path.name == "__init__.py", node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in dict.fromkeys(t for found in targets for t in _entered(source, found)):
            if target in known:
                yield Import(source, target, node.lineno, at_load)


def _entered(source: str, target: str) -> list[str]:
    """``target`` and the packages above it that importing it from ``source`` runs first."""
    parts = target.split(".")
    above = [".".join(parts[:n]) for n in range(1, len(parts))]
    return [p for p in above if not source.startswith(p + ".") and source != p] + [target]


def all_imports(root: Path, packages: tuple[str, ...]) -> list[Import]:
    """Every import between the modules of ``packages``."""
    known = module_names(root, packages)
    return [found for name, path in known.items() for found in imports_of(name, path, known)]


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def upward_imports(imports: list[Import], store: str, above: tuple[str, ...]) -> list[str]:
    """``file:line source -> target`` for each import from the store into a package above it."""
    return [
        f"{found.source}:{found.line} imports {found.target}"
        for found in imports
        if _within(found.source, (store,)) and _within(found.target, above)
    ]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module, or of one that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """The shortest path from ``start`` back to itself through ``members``."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, set()) & members):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    return [start]


def import_cycles(imports: list[Import]) -> list[str]:
    """One line per circle of module-level imports: a shortest loop, then every module caught in it."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.at_load:
            graph.setdefault(found.source, set()).add(found.target)
    return [
        " -> ".join(_shortest_cycle(graph, component[0], set(component)))
        + f" (all {len(component)} modules in the circle: {', '.join(component)})"
        for component in _strongly_connected(graph)
    ]


def test_the_store_imports_no_package_above_it() -> None:
    upward = upward_imports(all_imports(ROOT, PACKAGES), STORE, ABOVE_THE_STORE)

    assert not upward, "the store computes nothing, domain code does:\n" + "\n".join(upward)


def test_the_configuration_imports_no_package_that_reads_it() -> None:
    upward = upward_imports(all_imports(ROOT, PACKAGES), CONFIG, ABOVE_THE_CONFIG)

    assert not upward, "the alert kinds and webhooks check settings in monitor.settings:\n" + "\n".join(upward)


def test_no_modules_import_each_other_in_a_circle() -> None:
    cycles = import_cycles(all_imports(ROOT, PACKAGES))

    assert not cycles, "module-level import circles:\n" + "\n".join(cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


CIRCLES = {
    "a circle is named module by module": (
        {
            "app/__init__.py": "from app.a import A\n",
            "app/a.py": "from app import b\nA = 1\n",
            "app/b.py": "from .c import C\n",
            "app/c.py": "import app.a\nC = 2\n",
            "app/d.py": "def lazy():\n    import app.a\n",
        },
        ["app.a -> app.b -> app.c -> app.a (all 3 modules in the circle: app.a, app.b, app.c)"],
    ),
    "a package entered from outside runs its __init__ first": (
        {
            "app/__init__.py": "",
            "app/low/__init__.py": "from app.high import H\n",
            "app/low/rec.py": "R = 1\n",
            "app/high.py": "from app.low.sub import S\nH = 1\n",
            "app/low/sub.py": "from app.low.rec import R\nS = R\n",
        },
        ["app.high -> app.low -> app.high (all 2 modules in the circle: app.high, app.low)"],
    ),
    "imports that do not run at load make no circle": (
        {
            "app/__init__.py": "from app.a import A\n",
            "app/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.b import B\nA = 1\n",
            "app/b.py": "from app.a import A\n\ndef f():\n    from app import a\nB = A\n",
        },
        [],
    ),
}


@pytest.mark.parametrize(("files", "expected"), CIRCLES.values(), ids=CIRCLES.keys())
def test_circles_are_found_and_named_module_by_module(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    _write(tmp_path, files)

    assert import_cycles(all_imports(tmp_path, ("app",))) == expected


@pytest.mark.parametrize(
    "statement",
    ["from app.domain.rules import Rule", "import app.domain", "def f():\n    from ..domain import rules"],
)
def test_an_upward_import_from_the_store_is_found_wherever_it_stands(tmp_path: Path, statement: str) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/domain/__init__.py": "",
            "app/domain/rules.py": "Rule = 1\n",
            "app/store/__init__.py": "",
            "app/store/keep.py": statement + "\n",
        },
    )

    upward = upward_imports(all_imports(tmp_path, ("app",)), "app.store", ("app.domain",))

    assert upward and all(re.fullmatch(r"app\.store\.keep:[12] imports app\.domain(\.rules)?", u) for u in upward)
