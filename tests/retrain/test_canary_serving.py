"""A challenger in canary through the real processes: ``mlwatch server``, ``mlwatch serve`` and the
worker's stage review, on a SQLite store and a SQLite-backed MLflow registry.

Versions (``tests.retrain.shadow_models``): 1 the first champion, 2 a better model, 3 one
that raises on every call, 6 one that takes 250 ms a call. The tests run in order on one
stack: version 2's canary holds and is promoted, then 3 and 6 are rolled back beside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from monitor.store import Store
from retrain.canary import routed
from retrain.tasks import StageReview
from tests.retrain.scenario import frame
from tests.retrain.serving_stack import Stack, active_stage, latest_stage, running, until

POLICY = {
    "auto_promote": True,
    "stages": ["canary"],
    # latency: a 4x margin, as one-row requests of two sound versions differ by 2x on a busy machine
    "canary": {
        "share": 0.3,
        "duration": "1h",
        "min_requests": 20,
        "max_error_rate_increase": 0.05,
        "max_latency_ratio": 4,
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(tmp_path_factory.mktemp("canary"), POLICY) as started:
        yield started


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.api.client() as opened:
        yield opened


def _review(stack: Stack, now: float) -> list[str]:
    """One pass of the worker's stage review at ``now``; the event types queued so far."""
    settings = stack.settings()
    store = Store.open(settings.store_url)
    try:
        StageReview(store, settings).tick(now)
        return [d.event_type for d in store.list_deliveries()]
    finally:
        store.close()


def _serving_canary(stack: Stack) -> str | None:
    found = stack.version()["canary"]
    return None if found is None else str(found["version"])


def _requests_seen(client: httpx.Client, canary: int, champion: int) -> dict[str, Any] | None:
    """The active canary's health once the API has every request of both versions (the
    champion's counted from the minute the stage started: traffic is kept per minute)."""
    health: dict[str, Any] = (active_stage(client) or {}).get("health") or {}
    if not health:
        return None
    seen = health["canary"]["requests"] == canary and health["champion"]["requests"] >= champion
    return health if seen else None


def test_a_canary_answers_its_share_of_requests_sticky_by_request_id_and_is_promoted_once_it_held(
    stack: Stack, client: httpx.Client
) -> None:
    started = client.post("/v1/services/credit/stages", json={"version": "2", "stage": "canary"})
    assert started.status_code == 201, started.text
    assert (started.json()["stage"], started.json()["details"]) == ("canary", {"share": 0.3})  # the policy's share
    models = client.get("/v1/services/credit/models").json()
    assert (models["champion"], models["canary"], models["stage"]["version"]) == ("1", "2", "2")
    until(lambda: _serving_canary(stack) == "2", "serve to load the canary")
    data = frame(120, seed=11)
    ids = [f"q{i}" for i in range(len(data))]
    answered = {}
    for i, request_id in enumerate(ids):
        rows = data.iloc[[i]]
        answer = stack.score(rows, request_id)
        assert answer.status_code == 200, answer.text
        expected = "2" if routed(request_id, 0.3) else "1"
        assert answer.headers["X-Model-Version"] == expected
        model = stack.challenger if expected == "2" else stack.champion
        assert answer.json()["predictions"] == model.predict(rows.drop(columns=["label"])).tolist()
        answered[request_id] = expected
    to_canary = sum(v == "2" for v in answered.values())
    assert 0.15 < to_canary / len(ids) < 0.45
    for request_id in ids[:10]:  # the same id, the same version
        assert stack.score(data.iloc[[0]], request_id).headers["X-Model-Version"] == answered[request_id]
    health = until(lambda: _requests_seen(client, to_canary, len(ids) - to_canary), "the requests", 30)
    # the ten repeats are stored once each (same request ids): the counts are of distinct rows
    assert health["breaches"] == [] and health["judged"] == ["error_rate", "latency"]
    stage = active_stage(client)
    assert stage is not None
    assert _review(stack, stage["started_at"] + 3599) == ["model.canary_started"]  # nothing to send before it held
    events = _review(stack, stage["started_at"] + 3600)
    ended = latest_stage(client)
    assert ended["status"] == "passed" and ended["reason"].startswith(f"held for 3600s on {to_canary} requests")
    assert {"model.canary_ended", "model.promoted"} <= set(events)
    models = client.get("/v1/services/credit/models").json()
    assert (models["champion"], models["canary"], models["stage"]) == ("2", None, None)
    until(lambda: stack.version()["version"] == "2", "serve to swap in version 2")
    until(lambda: _serving_canary(stack) is None, "serve to drop the ended canary")


def test_a_canary_that_fails_costs_its_clients_no_error_and_is_rolled_back(stack: Stack, client: httpx.Client) -> None:
    started = client.post("/v1/services/credit/stages", json={"version": "3", "stage": "canary", "share": 0.5})
    assert started.status_code == 201, started.text
    until(lambda: _serving_canary(stack) == "3", "serve to load the failing canary")
    data = frame(60, seed=12)
    ids = [f"f{i}" for i in range(len(data))]
    for i, request_id in enumerate(ids):
        answer = stack.score(data.iloc[[i]], request_id)
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "2"  # the champion answered
    failed = sum(routed(r, 0.5) for r in ids)
    until(lambda: _requests_seen(client, failed, len(ids)), "the canary's failures", 30)
    events = _review(stack, time.time())
    ended = latest_stage(client)
    assert ended["status"] == "rolled_back"
    said = f"rolled back: error rate 100.0% on {failed} requests against the champion's 0.0%"
    assert ended["reason"].startswith(said)
    assert ended["details"]["health"]["canary"]["errors"] == failed
    assert "model.canary_rolled_back" in events
    models = client.get("/v1/services/credit/models").json()
    assert (models["champion"], models["canary"]) == ("2", None)
    until(lambda: _serving_canary(stack) is None, "serve to drop the rolled-back canary")
    assert stack.score(data.iloc[[0]], ids[0]).headers["X-Model-Version"] == "2"


def test_a_slow_canary_is_rolled_back_on_its_latency(stack: Stack, client: httpx.Client) -> None:
    started = client.post("/v1/services/credit/stages", json={"version": "6", "stage": "canary", "share": 0.5})
    assert started.status_code == 201, started.text
    until(lambda: _serving_canary(stack) == "6", "serve to load the slow canary")
    data = frame(60, seed=13)
    ids = [f"s{i}" for i in range(len(data))]
    versions = [stack.score(data.iloc[[i]], r).headers["X-Model-Version"] for i, r in enumerate(ids)]
    assert versions == ["6" if routed(r, 0.5) else "2" for r in ids]
    slow = versions.count("6")
    until(lambda: _requests_seen(client, slow, len(ids) - slow), "the slow canary's requests", 30)
    _review(stack, time.time())
    ended = latest_stage(client)
    assert ended["status"] == "rolled_back" and "rolled back: latency p95" in ended["reason"]
    health = ended["details"]["health"]
    assert health["canary"]["latency_p95_ms"] > 200 > health["champion"]["latency_p95_ms"]
