"""A real KServe model server (``kserve`` 0.21, in its own environment: ``make kserve``) answering
TensorFlow Serving's REST API, which is KServe's V1 protocol, with `mlwatch proxy` in front of
it sending to a real `mlwatch server`. No TF Serving binary installs here; its API is what
this checks, in the row (``instances``) and columnar (``inputs``) formats, ``signature_name``
included."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.records import StoredPrediction
from tests.collectors.conftest import register, stored
from tests.collectors.mlflow_serving import proxying, running
from tests.conftest import RunningServer, free_port

KSERVE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-kserve" / "bin" / "python"
pytestmark = pytest.mark.skipif(not KSERVE_PYTHON.exists(), reason="needs KServe's environment: make kserve")
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]
PREDICT = "/v1/models/iris:predict"


@pytest.fixture(scope="module")
def kserve_url() -> Iterator[str]:
    port = free_port()
    cmd = [str(KSERVE_PYTHON), str(Path(__file__).with_name("kserve_iris.py")), "--http_port", str(port)]
    with running(cmd, dict(os.environ), f"http://127.0.0.1:{port}/v1/models/iris", 120):
        yield f"http://127.0.0.1:{port}"


def _wait_stored(api: RunningServer, service: str, count: int, timeout: float = 20.0) -> list[StoredPrediction]:
    deadline = time.monotonic() + timeout
    while len(rows := stored(api, service)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


def test_tf_serving_row_and_columnar_requests_through_kserve_are_stored_with_classes_and_scores(
    api: RunningServer, kserve_url: str, tmp_path: Path
) -> None:
    register(api, "iris-tfs", FEATURES)  # before the proxy starts: positional values take these names
    named = dict(zip(FEATURES, VIRGINICA, strict=True))
    calls = [
        ("rows", {"signature_name": "serving_default", "instances": [SETOSA, VIRGINICA]}),
        ("objects", {"instances": [named]}),
        (
            "columns",
            {
                "signature_name": "serving_default",
                "inputs": {f: [s, v] for f, s, v in zip(FEATURES, SETOSA, VIRGINICA, strict=True)},
            },
        ),
        ("matrix", {"inputs": [VIRGINICA]}),
    ]
    with (
        proxying(kserve_url, "iris-tfs", api.url, api.token, tmp_path, "--path", PREDICT) as url,
        httpx.Client(base_url=url) as client,
    ):
        replies = {rid: client.post(PREDICT, json=body, headers={"X-Request-ID": rid}) for rid, body in calls}
        assert {rid: r.status_code for rid, r in replies.items()} == dict.fromkeys(replies, 200)
        rows = {r.request_id: r for r in _wait_stored(api, "iris-tfs", 6)}
    direct = httpx.post(f"{kserve_url}{PREDICT}", json=calls[0][1]).json()
    assert replies["rows"].json() == direct  # the proxy answers what KServe answered
    setosa = dict(zip(FEATURES, SETOSA, strict=True))
    expected = {
        "rows-0": (setosa, 0),
        "rows-1": (named, 2),
        "objects": (named, 2),
        "columns-0": (setosa, 0),
        "columns-1": (named, 2),
        "matrix": (named, 2),
    }
    assert {rid: (r.features, r.prediction) for rid, r in rows.items()} == expected
    scores = direct["predictions"][1]["scores"]
    assert rows["rows-1"].probabilities == scores and rows["columns-1"].probabilities == scores
    assert all(r.latency_ms is not None and r.latency_ms > 0 for r in rows.values())
