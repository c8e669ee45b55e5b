"""Function handlers (Lambda, Cloud Functions) against a real API server, up, away and silent."""

from __future__ import annotations

import json
import socket
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flask
import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.sdk.serverless import Invocation, serverless_tracker, spool_directory, tracked_handler
from tests.collectors.conftest import launch, register, stored
from tests.conftest import RunningServer, free_port

# the sender would wait a second between cycles: a handler's flush wakes it, nothing else should
SLOW_SENDER = DeliveryOptions(flush_interval=60.0, backoff_initial=60.0, backoff_max=60.0)
GENEROUS = 5.0  # seconds: the budget where a test checks delivery, not the budget (a loaded CI machine)


def _tracker(url: str, token: str | None, service: str, spool: Path, **kwargs: Any) -> Tracker:
    return serverless_tracker(
        service, url=url, token=token, spool_dir=spool, options=SLOW_SENDER, flush_at_exit=False, **kwargs
    )


def _gateway_event(body: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway (REST, proxy integration) event as Lambda hands it over."""
    return {
        "resource": "/predict",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"requestId": "gw-1", "stage": "prod"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _context() -> SimpleNamespace:
    """The attributes of a Lambda context that a handler may read."""
    return SimpleNamespace(aws_request_id=f"lambda-{uuid.uuid4().hex}", function_name="credit", memory_limit_in_mb=512)


def test_a_lambda_handler_has_its_prediction_stored_before_it_returns(api: RunningServer, tmp_path: Path) -> None:
    register(api, "lambda-up", ["age", "income"])
    tracker = _tracker(api.url, api.token, "lambda-up", tmp_path / "spool")

    @tracked_handler(tracker, budget=GENEROUS, model_version="4")
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        features = json.loads(event["body"])["features"]
        return {"statusCode": 200, "body": json.dumps({"prediction": int(features["age"] > 40)})}

    context = _context()
    reply = handler(_gateway_event({"features": {"age": 52, "income": 3100.0}}), context)
    rows = stored(api, "lambda-up")  # no flush here: the handler delivered before it returned
    assert json.loads(reply["body"]) == {"prediction": 1}
    assert [(r.request_id, r.features, r.prediction, r.status, r.model_version) for r in rows] == [
        (context.aws_request_id, {"age": 52, "income": 3100.0}, 1, "ok", "4")
    ]
    assert rows[0].latency_ms is not None and tracker.stats().spooled_bytes == 0
    tracker.close()


def test_a_cloud_functions_handler_has_its_prediction_stored_before_it_returns(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "gcf-up", ["x", "y"])
    tracker = _tracker(api.url, api.token, "gcf-up", tmp_path / "spool")
    app = flask.Flask("gcf")

    @tracked_handler(tracker, budget=GENEROUS)
    def predict(request: flask.Request) -> tuple[flask.Response, int]:
        row = request.get_json()
        return flask.jsonify({"prediction": 0, "probabilities": [0.75, 0.25], "echo": row}), 200

    with app.test_request_context("/", method="POST", json={"x": 1.5, "y": -2.0}, headers={"X-Request-ID": "gcf-7"}):
        _, status = predict(flask.request)
    rows = stored(api, "gcf-up")
    assert status == 200
    assert [(r.request_id, r.features, r.prediction, r.probabilities) for r in rows] == [
        ("gcf-7", {"x": 1.5, "y": -2.0}, 0, [0.75, 0.25])
    ]
    tracker.close()


def test_the_context_manager_records_its_block_and_delivers_before_the_block_returns(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "block-up", ["x"])
    tracker = _tracker(api.url, api.token, "block-up", tmp_path / "spool")
    with Invocation(tracker, {"x": 3.0}, budget=GENEROUS) as call:
        call.prediction = 2.5
    assert [(r.request_id, r.features, r.prediction) for r in stored(api, "block-up")] == [
        (call.request_id, {"x": 3.0}, 2.5)
    ]
    tracker.close()


def test_a_handler_that_raises_is_stored_as_an_error_and_the_exception_propagates(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "lambda-raises", ["age"])
    tracker = _tracker(api.url, api.token, "lambda-raises", tmp_path / "spool")

    @tracked_handler(tracker, budget=GENEROUS)
    def handler(event: dict[str, Any], context: Any) -> int:
        raise ValueError(f"no model for age {event['age']}")

    context = _context()
    with pytest.raises(ValueError, match="no model for age 7"):
        handler({"age": 7}, context)
    rows = stored(api, "lambda-raises")
    assert [(r.request_id, r.features, r.prediction, r.status) for r in rows] == [
        (context.aws_request_id, {"age": 7}, None, "error")
    ]
    tracker.close()


def test_with_the_server_down_records_are_spooled_within_the_budget_and_a_later_invocation_delivers_them(
    tmp_path: Path,
) -> None:
    port, token = free_port(), f"t-{uuid.uuid4().hex}"
    url, store_url, spool = f"http://127.0.0.1:{port}", f"sqlite:///{tmp_path / 'mlwatch.db'}", tmp_path / "spool"
    tracker = _tracker(url, token, "lambda-down", spool)

    def double(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"prediction": event["x"] * 2}

    handler = tracked_handler(tracker, double)  # the default budget, 0.2 s

    took, contexts = [], [_context() for _ in range(3)]
    for i, context in enumerate(contexts):
        start = time.perf_counter()
        handler({"x": i}, context)
        took.append(time.perf_counter() - start)
    assert max(took) < 0.2 + 0.1, took  # the budget, and scheduling on a loaded machine
    assert tracker.stats().server_down and len(list(spool.glob("*.json"))) == 3
    tracker.close(0.1)  # the instance is recycled; its disk stays (the spool_dir)

    server = launch(tmp_path, store_url, port, token)
    try:
        running = RunningServer(url, token, store_url, server, tmp_path)
        register(running, "lambda-down", ["x"])
        later = _tracker(url, token, "lambda-down", spool)  # a cold start on the same disk
        fresh = _context()
        tracked_handler(later, double, budget=GENEROUS)({"x": 10}, fresh)
        rows = stored(running, "lambda-down")
    finally:
        server.terminate()
        server.wait()
    ids = [c.aws_request_id for c in [*contexts, fresh]]
    assert sorted((r.features["x"], r.prediction, r.request_id) for r in rows) == [
        (0, 0, ids[0]),
        (1, 2, ids[1]),
        (2, 4, ids[2]),
        (10, 20, ids[3]),
    ]
    assert later.stats().spooled_bytes == 0
    later.close()


def test_a_server_that_never_answers_costs_the_handler_its_budget_and_the_record_waits_on_disk(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "lambda-silent", ["x"])
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections, never reads or answers
    spool = tmp_path / "spool"
    tracker = _tracker(f"http://127.0.0.1:{silent.getsockname()[1]}", api.token, "lambda-silent", spool)

    @tracked_handler(tracker, budget=0.1)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"prediction": 1}

    context = _context()
    start = time.perf_counter()
    handler({"x": 5}, context)
    took = time.perf_counter() - start
    on_disk = [p.name for p in spool.iterdir() if ".json" in p.name]
    silent.close()  # the connection is reset: the sender puts the batch back
    tracker.close(GENEROUS)
    assert 0.1 <= took < 0.1 + 0.1, took
    assert len(on_disk) == 1, on_disk  # claimed by the sender (on the wire) or back in the spool
    assert [p.name for p in spool.glob("*.json")] == [on_disk[0].split(".json")[0] + ".json"]

    later = _tracker(api.url, api.token, "lambda-silent", spool)  # a new process would take over the claim
    later.flush(GENEROUS)
    assert [(r.request_id, r.features) for r in stored(api, "lambda-silent")] == [(context.aws_request_id, {"x": 5})]
    later.close()


def test_the_default_spool_is_in_the_temporary_directory_keyed_by_service_and_server() -> None:
    first = spool_directory("credit", "http://127.0.0.1:8000")
    assert first.parts[-4:-1] == ("mlwatch", "spool", "credit")
    assert first != spool_directory("credit", "http://10.0.0.1:8000")
    assert str(first).startswith(tempfile.gettempdir())
    tracker = serverless_tracker("credit", url="http://127.0.0.1:8000", flush_at_exit=False)
    try:
        assert tracker.spool_dir == first  # the tracker uses it, keyed by its own server
    finally:
        tracker.close()
