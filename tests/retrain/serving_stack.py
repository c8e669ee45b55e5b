"""The real processes behind the rollout-stage tests: ``mlwatch server`` and ``mlwatch serve`` on
a SQLite store and a SQLite-backed MLflow registry holding ``tests.retrain.shadow_models``'
versions, version 1 the champion. Requests carry ``X-Request-ID`` so that labels can be sent
for their rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from monitor.config import Settings
from monitor.settings import load_settings
from monitor.store import Store
from retrain.registry import Registry
from tests.conftest import RunningServer, free_port, start_server, stop_process, wait_http
from tests.retrain.scenario import frame, register
from tests.retrain.shadow_models import register_versions


@dataclass
class Stack:
    """The running processes and what the tests compare against."""

    api: RunningServer
    serve: str
    work: Path
    champion: Any
    challenger: Any

    def settings(self) -> Settings:
        """The settings the processes run with."""
        return load_settings(self.work / "mlwatch.yaml", environ={})

    def version(self) -> dict[str, Any]:
        """What ``mlwatch serve`` says it serves (``/version``)."""
        return dict(httpx.get(f"{self.serve}/version").json())

    def score(self, rows: pd.DataFrame, request_id: str) -> httpx.Response:
        """One scoring request for ``rows`` (their ``label`` column left out)."""
        body = {"dataframe_records": rows.drop(columns=["label"]).to_dict(orient="records")}
        return httpx.post(f"{self.serve}/invocations", json=body, headers={"X-Request-ID": request_id}, timeout=30)


def config(work: Path, policy: dict[str, Any]) -> dict[str, Any]:
    """The settings of a stack whose service ``credit`` retrains under ``policy``."""
    return {
        "store_url": f"sqlite:///{work / 'mlwatch.db'}",
        "mlflow_tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
        "allow_private_webhooks": True,
        "webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/hook"}],
        "retrain": [{"service": "credit", "gate": {"metric": "accuracy"}, **policy}],
    }


SERVE = (sys.executable, "-m", "monitor", "serve", "credit")
SHADOW_TIMEOUT = 5.0
"""Seconds a shadow's model call may run in these stacks before serve stops it as hung."""


@contextmanager
def running(work: Path, policy: dict[str, Any]) -> Iterator[Stack]:
    """The API and ``mlwatch serve`` for service ``credit`` under ``policy``, until the block ends."""
    (work / "mlwatch.yaml").write_text(yaml.safe_dump(config(work, policy)))
    settings = load_settings(work / "mlwatch.yaml", environ={})
    store = Store.open(settings.store_url)
    service = register(store, "credit")
    champion, challenger = register_versions(work, settings.mlflow_tracking_uri, frame(2000, seed=0))
    Registry.from_settings(settings, store).promote(service, "1", actor="test", reason="first champion")
    store.close()
    api = start_server(work, settings.store_url, {"MLWATCH_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri})
    port = free_port()
    env = {**os.environ, "MLWATCH_URL": api.url, "MLWATCH_TOKEN": api.token}
    serve = subprocess.Popen(
        [*SERVE, "--port", str(port), "--poll-interval", "0.5", "--shadow-timeout", str(SHADOW_TIMEOUT)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/ping", timeout=90, proc=serve)
        until(lambda: httpx.get(f"{url}/ping").status_code == 200, "the champion to load")
        yield Stack(api, url, work, champion, challenger)
    finally:
        stop_process(serve)
        api.stop()


def until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """The first true value of ``condition``, polled every 0.2 s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {timeout}s")


def error_of(answer: httpx.Response, status: int) -> str:
    """The message of an error answer, once its status is checked."""
    assert answer.status_code == status, answer.text
    return str(answer.json()["message"])


def active_stage(client: httpx.Client) -> dict[str, Any] | None:
    """Service ``credit``'s stage in progress, as the API shows it."""
    found: dict[str, Any] | None = client.get("/v1/services/credit/stages").json()["active"]
    return found


def latest_stage(client: httpx.Client) -> dict[str, Any]:
    """Service ``credit``'s newest stage, as the API shows it."""
    found: dict[str, Any] = client.get("/v1/services/credit/stages").json()["stages"][0]
    return found
