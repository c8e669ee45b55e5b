"""The whole loop on real processes: mlwatch server, worker (and its job process), mlwatch serve.

Drifted, relabeled traffic goes through the serving process and is logged with the version
that answered; a retrain job trains a challenger that beats the champion on that traffic,
the gate promotes it, and the serving process swaps to it while a client keeps calling,
without one failed request; a rollback brings the old version back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor.drift.reference import keep_reference
from monitor.settings import load_settings
from monitor.store import Store
from retrain.actions import request_retrain
from retrain.registry import Registry
from retrain.runner import JobRunner
from tests.conftest import RunningServer, free_port, start_server, stop_process, wait_http
from tests.retrain.scenario import FEATURES, frame

PARAMS = {"estimator": "random_forest", "estimator_params": {"n_estimators": 20, "max_depth": 8, "random_state": 0}}


@dataclass
class Stack:
    server: RunningServer
    store: Store
    workdir: Path
    env: dict[str, str]


def _config(work: Path, store_url: str, mlflow_uri: str) -> None:
    config = {
        "store_url": store_url,
        "mlflow_tracking_uri": mlflow_uri,
        "check_interval": "1h",
        "services": [
            {
                "name": "credit",
                "task": "classification",
                "target": "label",
                "features": [{"name": f.name, "type": f.type} for f in FEATURES],
            }
        ],
        "retrain": [{"service": "credit", "auto_promote": True, "params": PARAMS, "gate": {"metric": "f1"}}],
    }
    (work / "mlwatch.yaml").write_text(yaml.safe_dump(config))


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, grace=15)


def _train_first_champion(work: Path, store: Store) -> None:
    """Version 1, trained in this process (the worker's job process trains version 2)."""
    settings = load_settings(work / "mlwatch.yaml", environ={})
    job, _ = request_retrain(store, settings, "credit", actor="setup")
    claimed = store.claim_job("setup")
    assert claimed is not None and claimed.id == job.id
    JobRunner(store, settings, Registry.from_settings(settings, store)).run(claimed)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("e2e")
    store_url, mlflow_uri = f"sqlite:///{work / 'mlwatch.db'}", f"sqlite:///{work / 'mlflow.db'}"
    _config(work, store_url, mlflow_uri)
    server = start_server(work, store_url)
    env = {**os.environ, "MLWATCH_URL": server.url, "MLWATCH_TOKEN": server.token}
    store = Store.open(store_url)
    keep_reference(store, store.get_service("credit"), frame(1500, seed=1))
    _train_first_champion(work, store)
    worker = subprocess.Popen(
        [sys.executable, "-m", "monitor", "worker", "--poll", "0.2"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield Stack(server, store, work, env)
    _stop(worker)
    server.stop()
    store.close()


def _job(client: httpx.Client, job_id: int, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def _serve(stack: Stack) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "credit", "--port", str(port), "--poll-interval", "0.3"],
        cwd=stack.workdir,
        env=stack.env,
        stdout=(stack.workdir / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ping", timeout=60, proc=process)
    return process, url


def _split(data: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["x1", "x2", "color"], "data": data[["x1", "x2", "color"]].values.tolist()}}


class Load:
    """A client calling the serving process in a loop, recording status and version of each answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[int, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.body = {"dataframe_records": [{"x1": 2.5, "x2": 0.1, "color": "red"}]}

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    answer = client.post(f"{self.url}/invocations", json=self.body)
                    self.answers.append((answer.status_code, answer.headers.get("x-model-version")))
                    self.stop.wait(0.02)  # about 40 calls a second: a steady client, not a CPU hog
                except httpx.HTTPError as exc:
                    self.answers.append((0, repr(exc)))

    def until_version(self, version: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(v == version for _, v in self.answers[-5:]):
            time.sleep(0.1)
        time.sleep(0.5)  # a few more requests on the new version


def _versions_in_order(answers: list[tuple[int, str | None]]) -> list[str]:
    order: list[str] = []
    for _, version in answers:
        if not order or order[-1] != version:
            order.append(str(version))
    return order


def test_drift_retrain_gate_promotion_hot_swap_and_rollback(stack: Stack) -> None:
    client = stack.server.client()
    serve, url = _serve(stack)
    try:
        assert httpx.get(f"{url}/version").json()["version"] == "1"
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "model": "credit", "version": "1"}
        _bad_payloads_are_refused(url)
        _drifted_traffic_with_labels(stack, client, url)
        load = Load(url)
        load.thread.start()
        first = client.post("/v1/services/credit/retrain", json={"mode": "retrain"})
        again = client.post("/v1/services/credit/retrain", json={})
        assert first.status_code == again.status_code == 202
        assert (again.json()["job_id"], again.json()["created"]) == (first.json()["job_id"], False)
        job = _job(client, first.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        result = job["result"]
        assert (result["version"], result["decision"], result["champion_version"]) == ("2", "promote", "1")
        assert result["metrics"]["challenger"]["f1"] > result["metrics"]["champion"]["f1"]
        load.until_version("2")
        rolled = client.post("/v1/services/credit/rollback", json={"version": "1"})
        assert rolled.status_code == 200 and rolled.json()["champion"] == "1"
        load.until_version("1")
        load.stop.set()
        load.thread.join()
        assert {status for status, _ in load.answers} == {200}
        assert _versions_in_order(load.answers) == ["1", "2", "1"]
        _predictions_carry_their_version(stack)
    finally:
        _stop(serve)
    models = client.get("/v1/services/credit/models").json()
    assert (models["champion"], models["previous"]) == ("1", "2")
    assert [d["decision"] for d in models["decisions"]] == ["promote", "promote"]
    moves = [(h["alias"], h["from_version"], h["to_version"]) for h in models["history"]]
    assert moves[:2] == [("previous", "1", "2"), ("champion", "2", "1")]


def _bad_payloads_are_refused(url: str) -> None:
    cases = {
        b"{not json": "not valid JSON",
        b'{"rows": []}': "exactly one of dataframe_split, dataframe_records, instances, inputs",
        b'{"dataframe_split": [1, 2]}': "dataframe_split: expected",
        b'{"dataframe_records": [{"x1": 1.0}]}': "could not score the input",
    }
    for body, message in cases.items():
        answer = httpx.post(f"{url}/invocations", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400 and message in answer.json()["message"], answer.text


def _drifted_traffic_with_labels(stack: Stack, client: httpx.Client, url: str) -> None:
    drifted = frame(1000, seed=2, drifted=True)
    with httpx.Client(timeout=30) as serving:
        head = drifted.head(3).drop(columns="label")
        formats = [_split(drifted.head(3)), {"dataframe_records": head.to_dict("records")}]
        formats += [{"instances": head.to_dict("records")}, {"inputs": head.to_dict("list")}]
        answers = [serving.post(f"{url}/invocations", json=body).json() for body in formats]
        assert all(a == answers[0] and len(a["predictions"]) == 3 for a in answers)
        for start in range(0, len(drifted), 100):
            chunk = drifted.iloc[start : start + 100]
            answer = serving.post(f"{url}/invocations", json=_split(chunk), headers={"X-Request-ID": f"d{start}"})
            assert answer.status_code == 200 and answer.headers["x-model-version"] == "1"
            labels = [{"request_id": f"d{start}-{i}", "label": int(y)} for i, y in enumerate(chunk["label"])]
            assert client.post("/v1/services/credit/labels", json={"labels": labels}).status_code == 200
    service = stack.store.get_service("credit")
    deadline = time.monotonic() + 30
    while stack.store.count_window(service, time.time() - 600, time.time() + 1) < 1012 and time.monotonic() < deadline:
        time.sleep(0.2)


def _predictions_carry_their_version(stack: Stack) -> None:
    service = stack.store.get_service("credit")
    deadline = time.monotonic() + 30
    versions: set[str | None] = set()
    while time.monotonic() < deadline and versions != {"1", "2"}:
        logged = stack.store.recent_predictions(service, limit=5000)
        versions = {p.model_version for p in logged}
        time.sleep(0.3)
    assert versions == {"1", "2"}
    # mlwatch serve logs the classifier's probabilities too (what label-free estimates need)
    assert logged and all(isinstance(p.probabilities, dict) for p in logged)
    assert all(set(p.probabilities) == {"0", "1"} for p in logged)
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-6 for p in logged)
    assert all(p.probabilities[str(p.prediction)] >= 0.5 for p in logged)
