"""Fixtures of the collector tests: one API server per module, services registered on it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.records import StoredPrediction
from monitor.store import Store
from tests.conftest import RunningServer, start_server, wait_http

IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real ``mlwatch server`` (SQLite) shared by the tests of one module."""
    workdir: Path = tmp_path_factory.mktemp("api")
    running = start_server(workdir, f"sqlite:///{workdir / 'mlwatch.db'}")
    yield running
    running.stop()


def register(server: RunningServer, name: str, features: list[str] | None = None) -> None:
    """Register service ``name`` with numerical ``features`` (none: any feature accepted)."""
    body = {"name": name, "features": [{"name": f, "type": "numerical"} for f in features or []]}
    with server.client() as client:
        client.post("/v1/services", json=body).raise_for_status()


def stored(server: RunningServer, name: str) -> list[StoredPrediction]:
    """Every prediction of service ``name`` as the server's store holds it, oldest first."""
    store = Store.open(server.store_url)
    try:
        found = store.recent_predictions(store.get_service(name), limit=1_000_000, since=time.time() - 30 * 86400)
    finally:
        store.close()
    return sorted(found, key=lambda p: (p.ts, p.request_id))  # rows of one call share a time


def launch(workdir: Path, store_url: str, port: int, token: str) -> subprocess.Popen[bytes]:
    """Start ``mlwatch server`` on a given port (so that it can be restarted on the same one)."""
    env = {**os.environ, "MLWATCH_STORE_URL": store_url, "MLWATCH_BOOTSTRAP_TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "server", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    return proc
