"""Shared fixtures: stores on SQLite and PostgreSQL, and a real API server process.

PostgreSQL tests use ``MLWATCH_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), each in a schema of its own; where no
server answers they skip with that reason, unless ``MLWATCH_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from sqlalchemy import create_engine, text

from monitor.store import Store

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("MLWATCH_TEST_POSTGRES_URL", DEFAULT_PG)


def _postgres_available(url: str) -> str | None:
    try:
        engine = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1), connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: no usable server
        return f"PostgreSQL not reachable at {url} (set MLWATCH_TEST_POSTGRES_URL): {type(exc).__name__}"


def unavailable(problem: str, required_by: str) -> NoReturn:
    """Skip a test for want of ``problem``'s part, or fail it where the variable ``required_by``
    is 1 (CI, whose .ci/run installs or starts that part)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{required_by}=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The base URL of a reachable PostgreSQL, or skip (fail in CI)."""
    url = postgres_base_url()
    problem = _postgres_available(url)
    if problem:
        unavailable(problem, "MLWATCH_REQUIRE_POSTGRES")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlwatch.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store, once per backend (the contract suites use this)."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    opened = Store.open(store_url, migrate=True)
    yield opened
    opened.close()


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers (any status), or fail with the process's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{out}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class RunningServer:
    """A real ``mlwatch server`` process on a loopback port."""

    url: str
    token: str
    store_url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=30)

    def stop(self) -> None:
        stop_process(self.process)


def start_server(
    workdir: Path, store_url: str, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> RunningServer:
    """Start ``mlwatch server`` in ``workdir`` (its cwd) and wait for /healthz."""
    port = free_port()
    token = f"boot-{uuid.uuid4().hex}"
    env = {**os.environ, "MLWATCH_STORE_URL": store_url, "MLWATCH_BOOTSTRAP_TOKEN": token, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "server", "--port", str(port), *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc=proc)
    return RunningServer(url, token, store_url, proc, workdir)


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[RunningServer]:
    """A real API server process on SQLite, with an admin bootstrap token."""
    running = start_server(tmp_path, sqlite_url)
    yield running
    running.stop()
