"""pyproject.toml declares what monitor/, retrain/ and dashboard/ import, in the right extra,
and nothing they do not; the ``mlwatch`` command says what to install when a part is missing.

Imports are read with ``ast`` (every ``import``, ``from ... import`` and
``importlib.import_module("literal")``, lazy and TYPE_CHECKING ones included) and mapped to
distributions with ``importlib.metadata.packages_distributions()`` of the dev environment,
which has every extra installed.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.extras import EXTRA_OF_MODULE, OWN, SERVER, extra_of, install_command, missing_extra_message

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME_EXTRAS = ("server", "stream", "text")
"""The extras the packages import from; ``all`` names them, ``dev`` adds the test tools."""

DECLARED_NOT_IMPORTED = {
    # starlette imports it (as ``python_multipart``) to parse the reference upload's multipart body
    "python-multipart",
}
"""Distributions mlwatch needs at run time without importing them itself."""


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``PyYAML`` -> ``pyyaml``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str) -> set[str]:
    """The distributions one extra of pyproject.toml names (self-references like ``mlwatch[server]`` expanded)."""
    names: set[str] = set()
    for requirement in PROJECT["optional-dependencies"][extra]:
        name, extras = re.match(r"([A-Za-z0-9._-]+)(?:\[([^\]]*)\])?", requirement).groups()  # type: ignore[union-attr]
        if normalized(name) == "mlwatch":
            for inner in extras.split(","):
                names |= declared(inner.strip())
        else:
            names.add(normalized(name))
    return names


def imported_modules() -> Iterator[tuple[str, Path]]:
    """Every third-party top-level module the packages import, with the file that imports it."""
    for package in sorted(OWN):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                for name in _names(node):
                    top = name.partition(".")[0]
                    if top not in OWN and top not in sys.stdlib_module_names and top != "__future__":
                        yield top, path


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
    return []


@functools.cache
def _providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # reads every RECORD: a few seconds, once


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide top-level ``module``."""
    return {normalized(d) for d in _providers().get(module, [])}


def test_the_bare_distribution_has_no_dependency_and_all_names_every_runtime_extra() -> None:
    assert PROJECT["dependencies"] == []
    assert declared("all") == set().union(*(declared(extra) for extra in RUNTIME_EXTRAS))
    assert declared("all") <= declared("dev")  # `make test` gets every extra


def test_every_third_party_import_is_declared_in_the_extra_that_installs_it() -> None:
    undeclared = []
    for module, path in imported_modules():
        providers = distributions_of(module)
        assert providers, f"{module} (imported by {path.relative_to(ROOT)}) is not installed here: make test"
        if not providers & declared(extra_of(module)):
            undeclared.append(f"{module} ({', '.join(sorted(providers))}) imported by {path.relative_to(ROOT)}")
    assert not undeclared, f"not declared in the extra monitor.extras.EXTRA_OF_MODULE gives it: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    imported = {d for module, _ in imported_modules() for d in distributions_of(module)}
    unused = set().union(*(declared(extra) for extra in RUNTIME_EXTRAS)) - imported - DECLARED_NOT_IMPORTED
    assert not unused, f"declared in pyproject.toml, never imported: {sorted(unused)}"


def test_the_extras_named_apart_from_server_are_extras_of_pyproject() -> None:
    assert set(EXTRA_OF_MODULE.values()) <= set(RUNTIME_EXTRAS) - {SERVER}
    assert extra_of("nats.js.errors") == "stream" and extra_of("mlflow.sklearn") == SERVER


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_a_command_without_click_prints_the_install_command_and_exits_1_without_a_traceback(tmp_path: Path) -> None:
    done = _run("import sys; sys.modules['click'] = None\nfrom monitor.__main__ import run\nrun(['server'])", tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"mlwatch: the server part of mlwatch is not installed (no module named 'click'): {install_command('server')}"
    )


def test_a_command_whose_library_is_missing_names_that_library_and_its_extra(tmp_path: Path) -> None:
    code = "import sys; sys.modules['pydantic'] = None\nfrom monitor.__main__ import run\nrun(['token', 'list'])"
    done = _run(code, tmp_path)  # click is there; the configuration's pydantic is not
    assert (done.returncode, "Traceback" in done.stderr) == (1, False), done.stderr
    assert "no module named 'pydantic'" in done.stderr and "pip install 'mlwatch[server]'" in done.stderr


@pytest.mark.parametrize(
    "name",
    ["monitor.no_such_module", "click.no_such_module", "json.no_such_module", None],
)
def test_a_missing_module_no_install_would_bring_is_not_blamed_on_an_extra(name: str | None) -> None:
    assert missing_extra_message(ModuleNotFoundError("no", name=name)) is None


def test_a_missing_broker_client_is_blamed_on_the_stream_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "paho", None)  # as if paho-mqtt were not installed
    message = missing_extra_message(ModuleNotFoundError("no", name="paho.mqtt.client"))
    assert message is not None and message.endswith("pip install 'mlwatch[stream]'")
