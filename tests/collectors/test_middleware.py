"""The middleware inside a real FastAPI app and a real Flask app, served on loopback ports,
imported as the README writes it (``from monitor.sdk import MlwatchASGIMiddleware``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from flask import Flask, jsonify, request
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from werkzeug.serving import make_server

from monitor.sdk import DeliveryOptions, MlwatchASGIMiddleware, MlwatchWSGIMiddleware, TrackedSession, Tracker
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer, free_port, wait_http

FAST = DeliveryOptions(flush_interval=0.05)


def _tracker(api: RunningServer, service: str, tmp_path: Path) -> Tracker:
    return Tracker(service, url=api.url, token=api.token, spool_dir=tmp_path, options=FAST, flush_at_exit=False)


def _fastapi_app(tracker: Tracker) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(features: dict[str, float]) -> dict[str, object]:
        if features.get("x", 0) < 0:
            raise ValueError("negative x")
        return {"prediction": int(features["x"] > 1), "probabilities": [0.25, 0.75]}

    @app.post("/other")
    def other() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(MlwatchASGIMiddleware, tracker=tracker, paths=("/predict",))
    return app


@pytest.fixture
def fastapi_url(api: RunningServer, tmp_path: Path) -> Iterator[tuple[str, Tracker]]:
    register(api, "fastapi-svc", ["x", "y"])
    tracker = _tracker(api, "fastapi-svc", tmp_path)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_fastapi_app(tracker), port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_http(f"http://127.0.0.1:{port}/docs")
    yield f"http://127.0.0.1:{port}", tracker
    server.should_exit = True
    thread.join(10)
    tracker.close()


def test_asgi_middleware_in_fastapi_logs_each_prediction_and_leaves_answers_alone(
    api: RunningServer, fastapi_url: tuple[str, Tracker]
) -> None:
    url, tracker = fastapi_url
    with httpx.Client(base_url=url) as client:
        answers = [client.post("/predict", json={"x": x, "y": 0.5}) for x in (0.5, 2.0, 3.0)]
        assert client.post("/other").json() == {"ok": "yes"}
        failed = client.post("/predict", json={"x": -1.0, "y": 0.0})
    assert [a.json()["prediction"] for a in answers] == [0, 1, 1]
    assert failed.status_code == 500
    assert tracker.flush(10)
    rows = stored(api, "fastapi-svc")
    assert [(r.features, r.prediction, r.status) for r in rows] == [
        ({"x": 0.5, "y": 0.5}, 0, "ok"),
        ({"x": 2.0, "y": 0.5}, 1, "ok"),
        ({"x": 3.0, "y": 0.5}, 1, "ok"),
        ({"x": -1.0, "y": 0.0}, None, "error"),
    ]
    assert all(r.latency_ms is not None and r.latency_ms > 0 for r in rows)
    assert rows[0].probabilities == [0.25, 0.75]


def _flask_app(tracker: Tracker) -> Flask:
    app = Flask("model")

    @app.post("/invocations")
    def invocations() -> object:
        rows = request.get_json()["dataframe_records"]
        return jsonify({"predictions": [int(r["x"] + r["y"] > 1) for r in rows]})

    app.wsgi_app = MlwatchWSGIMiddleware(app.wsgi_app, tracker, paths=("/invocations",))  # type: ignore[method-assign]
    return app


def test_wsgi_middleware_in_flask_logs_every_row_of_a_batch(api: RunningServer, tmp_path: Path) -> None:
    register(api, "flask-svc", ["x", "y"])
    tracker = _tracker(api, "flask-svc", tmp_path)
    server = make_server("127.0.0.1", free_port(), _flask_app(tracker), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = {"dataframe_records": [{"x": 0.1, "y": 0.2}, {"x": 0.9, "y": 0.8}]}
        answer = httpx.post(f"http://127.0.0.1:{server.port}/invocations", json=body, headers={"X-Request-ID": "b1"})
    finally:
        server.shutdown()
        thread.join(10)
    assert answer.json() == {"predictions": [0, 1]}
    assert tracker.flush(10)
    rows = stored(api, "flask-svc")
    assert [(r.request_id, r.features, r.prediction) for r in rows] == [
        ("b1-0", {"x": 0.1, "y": 0.2}, 0),
        ("b1-1", {"x": 0.9, "y": 0.8}, 1),
    ]
    tracker.close()


def _onnx_iris() -> tuple[object, np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, target)
    onnx_model = skl2onnx.to_onnx(model, features[:1].astype(np.float32), options={"zipmap": False})
    return ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]), features


@pytest.mark.parametrize("given", [True, False], ids=["names given", "names registered"])
def test_onnx_session_wrapper_logs_one_record_per_input_row(api: RunningServer, tmp_path: Path, given: bool) -> None:
    real, features = _onnx_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    service = "onnx-given" if given else "onnx-registered"
    register(api, service, names)
    tracker = _tracker(api, service, tmp_path)
    session = TrackedSession(real, tracker, feature_names=names if given else None)
    batch = features[[0, 149]].astype(np.float32)
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: batch})
    assert labels.tolist() == [0, 2]
    assert tracker.flush(10)
    rows = stored(api, service)
    assert [r.features for r in rows] == [dict(zip(names, row, strict=True)) for row in batch.tolist()]
    assert [r.prediction for r in rows] == [0, 2]
    assert [r.probabilities for r in rows] == probabilities.tolist()
    tracker.close()
