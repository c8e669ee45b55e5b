"""A challenger in shadow through the real processes: ``mlwatch server``, ``mlwatch serve`` and
the worker's shadow policy, on a SQLite store and a SQLite-backed MLflow registry.

Versions: 1 a one-split tree (the first champion), 2 a logistic regression that is right far
more often, 3 a model that raises on every call (same signature), 4 one that takes other
columns, 5 one that ends the process it runs in. Requests carry ``X-Request-ID`` so that
labels can be sent for their rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from monitor.settings import load_settings
from monitor.store import Store
from retrain.registry import Registry
from retrain.tasks import ShadowReview
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


def _config(work: Path) -> dict[str, Any]:
    return {
        "store_url": f"sqlite:///{work / 'mlwatch.db'}",
        "mlflow_tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
        "allow_private_webhooks": True,
        "webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/hook"}],
        "retrain": [
            {
                "service": "credit",
                "auto_promote": True,
                "stages": ["shadow"],
                "shadow": {"min_labelled": 300, "max_duration": "1d"},
                "gate": {"metric": "accuracy"},
            }
        ],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("shadow")
    config = _config(work)
    (work / "mlwatch.yaml").write_text(yaml.safe_dump(config))
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
        [sys.executable, "-m", "monitor", "serve", "credit", "--port", str(port), "--poll-interval", "0.5"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/ping", timeout=90, proc=serve)
        _until(lambda: httpx.get(f"{url}/ping").status_code == 200, "the champion to load")
        yield Stack(api, url, work, champion, challenger)
    finally:
        stop_process(serve)
        api.stop()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.api.client() as opened:
        yield opened


def _until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {timeout}s")


def _shadow(stack: Stack) -> dict[str, Any]:
    return dict(httpx.get(f"{stack.serve}/version").json()["shadow"])


def _score(stack: Stack, rows: pd.DataFrame, request_id: str) -> httpx.Response:
    body = {"dataframe_records": rows.drop(columns=["label"]).to_dict(orient="records")}
    return httpx.post(f"{stack.serve}/invocations", json=body, headers={"X-Request-ID": request_id}, timeout=30)


def _error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    return str(answer.json()["message"])


def _active(client: httpx.Client) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get("/v1/services/credit/stages").json()["active"]
    return found


def test_a_shadow_of_another_signature_or_stage_is_refused_naming_the_key(client: httpx.Client) -> None:
    url = "/v1/services/credit/stages"
    message = _error(client.post(url, json={"version": "4"}), 422)
    assert message.startswith("version: version 4's input signature differs from champion 1's: lacks color")
    assert _error(client.post(url, json={"version": "2", "stage": "canary"}), 422).startswith(
        "stage: the 'canary' stage is not available yet"
    )
    assert _error(client.post(url, json={"version": "2", "stage": "rainbow"}), 422).startswith("stage: unknown stage")
    assert _error(client.post(url, json={"version": "1"}), 422).startswith("version: version 1 is the champion")
    assert _error(client.post(url, json={"version": "2", "share": 0.5}), 422).startswith("share:")
    assert "unknown version '9'" in _error(client.post(url, json={"version": "9"}), 404)
    assert "no stage in progress" in _error(client.delete(url), 409)
    assert _active(client) is None


def test_a_version_in_shadow_is_scored_beside_the_champion_and_never_answers(
    stack: Stack, client: httpx.Client
) -> None:
    started = client.post("/v1/services/credit/stages", json={"version": "2"})
    assert started.status_code == 201, started.text
    assert (started.json()["status"], started.json()["champion_version"]) == ("active", "1")
    assert "already has version 2 in shadow" in _error(
        client.post("/v1/services/credit/stages", json={"version": "3"}), 409
    )
    _until(lambda: _shadow(stack)["version"] == "2", "serve to load the shadow")
    data = frame(300, seed=7)
    for i in range(3):
        rows = data.iloc[i * 100 : (i + 1) * 100]
        answer = _score(stack, rows, f"r{i}")
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
        assert answer.json()["predictions"] == stack.champion.predict(rows.drop(columns=["label"])).tolist()
    compared = _until(
        lambda: (_active(client) or {}).get("comparison", {}).get("rows") == 300 and _active(client), "rows"
    )
    said = stack.challenger.predict(data.drop(columns=["label"]))
    before = stack.champion.predict(data.drop(columns=["label"]))
    comparison = compared["comparison"]
    assert comparison["agreement"] == pytest.approx(float(np.mean(said == before)))
    assert comparison["labelled"] == 0 and comparison["verdict"] is None
    assert comparison["estimated"]["shadow"] > comparison["estimated"]["champion"]
    labels = [{"request_id": f"r{i // 100}-{i % 100}", "label": int(v)} for i, v in enumerate(data["label"])]
    assert client.post("/v1/services/credit/labels", json={"labels": labels}).status_code == 200
    comparison = _active(client)["comparison"]  # type: ignore[index]
    assert comparison["labelled"] == 300
    assert comparison["shadow"]["accuracy"] == pytest.approx(float(np.mean(said == data["label"])))
    assert comparison["shadow"]["accuracy"] > comparison["champion"]["accuracy"] + 0.1


def test_the_worker_promotes_a_shadow_better_on_live_labelled_rows(stack: Stack, client: httpx.Client) -> None:
    settings = load_settings(stack.work / "mlwatch.yaml", environ={})
    store = Store.open(settings.store_url)
    try:
        ShadowReview(store, settings).tick(time.time())
        events = [d.event_type for d in store.list_deliveries()]
    finally:
        store.close()
    ended = client.get("/v1/services/credit/stages").json()["stages"][0]
    assert ended["status"] == "passed" and ended["reason"].startswith("better on 300 live labelled rows")
    assert ended["details"]["comparison"]["verdict"]["passed"] is True
    assert client.get("/v1/services/credit/models").json()["champion"] == "2"
    assert {"model.shadow_started", "model.shadow_ended", "model.promoted"} <= set(events)
    _until(lambda: httpx.get(f"{stack.serve}/version").json()["version"] == "2", "serve to swap in version 2")
    # serve learns of the champion and of the ended stage on separate polls: wait for both
    _until(lambda: _shadow(stack)["version"] is None, "serve to drop the ended shadow")


def test_a_shadow_that_crashes_never_affects_the_replies_and_ends_its_stage(stack: Stack, client: httpx.Client) -> None:
    assert client.post("/v1/services/credit/stages", json={"version": "3"}).status_code == 201
    _until(lambda: _shadow(stack)["version"] == "3", "serve to load the crashing shadow")
    data = frame(50, seed=8)
    expected = stack.challenger.predict(data.drop(columns=["label"])).tolist()
    for i in range(5):
        answer = _score(stack, data, f"c{i}")
        assert answer.status_code == 200 and answer.json()["predictions"] == expected
    ended = _until(
        lambda: (s := client.get("/v1/services/credit/stages").json()["stages"][0])["status"] == "crashed" and s,
        "the crash",
    )
    assert "RuntimeError: shadow model exploded" in ended["reason"] and ended["crashes"] >= 1
    assert _shadow(stack)["crashes"] >= 1
    assert _score(stack, data, "after").json()["predictions"] == expected
    assert _active(client) is None


def test_a_shadow_that_kills_its_process_never_affects_the_replies_and_ends_its_stage(
    stack: Stack, client: httpx.Client
) -> None:
    assert client.post("/v1/services/credit/stages", json={"version": "5"}).status_code == 201
    _until(lambda: _shadow(stack)["version"] == "5", "serve to load the shadow that exits")
    data = frame(50, seed=9)
    expected = stack.challenger.predict(data.drop(columns=["label"])).tolist()
    for i in range(5):
        answer = _score(stack, data, f"k{i}")
        assert answer.status_code == 200 and answer.json()["predictions"] == expected

    def crashed() -> dict[str, Any] | None:
        stage: dict[str, Any] = client.get("/v1/services/credit/stages").json()["stages"][0]
        return stage if stage["status"] == "crashed" else None

    ended = _until(crashed, "the shadow process to die")
    assert ended["version"] == "5" and "the shadow process died with exit code 70" in ended["reason"]
    assert _score(stack, data, "after-kill").json()["predictions"] == expected
    assert client.post("/v1/services/credit/stages", json={"version": "3"}).status_code == 201
    _until(lambda: _shadow(stack)["version"] == "3", "a new shadow process to load the next shadow")
