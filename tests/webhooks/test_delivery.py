"""Delivery to a real receiver: signed, retried with the same webhook-id, logged, never lost."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit
from monitor.webhooks.schema import EVENT_SCHEMA
from tests.conftest import free_port
from tests.webhooks.receiver import SECRET, Clock, Receiver, Step

ENV = {"HOOK_SECRET": SECRET}


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Store:
    return Store.open(sqlite_url)


def _settings(url: str, **hook: object) -> Settings:
    fields: dict[str, object] = {
        "name": "ops",
        "url": url,
        "secret_env": "HOOK_SECRET",
        "timeout": 0.3,
        "backoff_initial": 1.0,
        "backoff_max": 8.0,
        "retry_horizon": 600.0,
        **hook,
    }
    return Settings(webhooks=(WebhookConfig.model_validate(fields),), dashboard_url="http://dash.local:8501")


def _deliverer(store: Store, settings: Settings, clock: Clock) -> Deliverer:
    return Deliverer(store, settings, clock=clock, environ=ENV, rng=lambda: 0.5)


def test_event_arrives_signed_in_the_versioned_json_schema(sqlite_store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    (event_id,) = emit(sqlite_store, settings, "model.promoted", {"service": "credit", "version": "7"}, severity="info")
    _deliverer(sqlite_store, settings, Clock()).drain()
    (got,) = receiver.received
    assert got.signature_ok and got.event_id == event_id
    body = got.json()
    assert body["schema"] == "mlwatch.event/v1" and body["type"] == "model.promoted" and body["id"] == event_id
    assert body["data"] == {"service": "credit", "version": "7"}
    assert body["dashboard_url"] == "http://dash.local:8501/models?service=credit"
    Draft202012Validator(EVENT_SCHEMA).validate(body)
    (logged,) = sqlite_store.list_deliveries()
    assert logged.status == "delivered" and logged.attempts == 1 and logged.last_status_code == 200
    assert logged.last_latency_ms is not None and logged.last_latency_ms > 0


def test_slack_receivers_get_incoming_webhook_bodies(sqlite_store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver.url, format="slack")
    emit(sqlite_store, settings, "retrain.failed", {"service": "credit", "error": "boom"}, severity="critical")
    _deliverer(sqlite_store, settings, Clock()).drain()
    body = receiver.received[0].json()
    assert body["text"].startswith(":rotating_light: retrain.failed (credit)")
    assert body["blocks"][-1]["elements"][0]["url"] == "http://dash.local:8501/models?service=credit"


def test_routing_by_severity_labels_and_event_type(sqlite_store: Store, receiver: Receiver) -> None:
    hooks = (
        WebhookConfig(name="pager", url=receiver.url, min_severity="critical"),
        WebhookConfig(name="team-a", url=receiver.url, match_labels={"team": "a"}),
        WebhookConfig(name="models", url=receiver.url, events=("model.*",)),
    )
    settings = Settings(webhooks=hooks)
    emit(sqlite_store, settings, "retrain.failed", {}, severity="critical", labels={"team": "b"})
    emit(sqlite_store, settings, "alert.firing", {}, severity="warning", labels={"team": "a"})
    emit(sqlite_store, settings, "model.promoted", {}, severity="info", labels={"team": "b"})
    assert emit(sqlite_store, settings, "retrain.started", {}, severity="info", labels={"team": "b"}) == []
    routed = sorted((d.event_type, d.receiver) for d in sqlite_store.list_deliveries())
    assert routed == [("alert.firing", "team-a"), ("model.promoted", "models"), ("retrain.failed", "pager")]


def test_receiver_down_for_a_minute_still_gets_every_event_with_the_same_id(
    sqlite_store: Store, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    settings = _settings(url)
    clock = Clock()
    start = clock.now
    ids = [emit(sqlite_store, settings, "retrain.started", {"n": i})[0] for i in range(4)]
    deliverer = _deliverer(sqlite_store, settings, clock)
    receiver: Receiver | None = None
    while clock.now < start + 75:  # refused for 20 s, then 503, then stalls past the timeout, healthy after 60 s
        if receiver is None and clock.now >= start + 20:
            receiver = Receiver(port=port)
        if receiver is not None:
            phase = clock.now - start
            receiver.policy = lambda p=phase: Step(503) if p < 40 else (Step(stall=0.6) if p < 60 else Step(200))
        deliverer.run_once()
        clock.advance(4.0)
    assert receiver is not None
    try:
        assert set(receiver.delivered_ids()) == set(ids)
        per_id = Counter(r.event_id for r in receiver.received)
        assert all(per_id[i] >= 2 for i in ids)  # saw failures first, then success: retried
        assert all(r.signature_ok for r in receiver.received)
        bodies = {i: {r.body for r in receiver.received if r.event_id == i} for i in ids}
        assert all(len(b) == 1 for b in bodies.values())  # retries resend the very same body
        log = sqlite_store.list_deliveries()
        assert all(d.status == "delivered" and d.attempts >= 5 for d in log)
    finally:
        receiver.stop()


def test_retry_after_is_honoured(sqlite_store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    emit(sqlite_store, settings, "test", {})
    clock = Clock()
    receiver.script(Step(429, retry_after="120"))
    _deliverer(sqlite_store, settings, clock).run_once()
    (row,) = sqlite_store.list_deliveries()
    assert row.status == "pending" and row.next_attempt_at == pytest.approx(clock.now + 120, abs=0.01)
    assert row.last_status_code == 429


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(sqlite_store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    emit(sqlite_store, settings, "test", {})
    clock = Clock()
    receiver.policy = lambda: Step(500)
    deliverer = _deliverer(sqlite_store, settings, clock)
    delays = []
    for _ in range(6):
        clock.advance(50)
        deliverer.run_once()
        delays.append(sqlite_store.list_deliveries()[0].next_attempt_at - clock.now)
    # rng 0.5 → 75% of min(8, 1 * 2**(n-1))
    assert delays == pytest.approx([0.75, 1.5, 3.0, 6.0, 6.0, 6.0], abs=1e-6)


def test_client_errors_fail_at_once_and_the_horizon_ends_retries(sqlite_store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver.url, retry_horizon=30.0)
    emit(sqlite_store, settings, "test", {"case": "gone"})
    clock = Clock()
    receiver.script(Step(410))
    deliverer = _deliverer(sqlite_store, settings, clock)
    deliverer.run_once()
    assert [(d.status, d.last_status_code) for d in sqlite_store.list_deliveries()] == [("failed", 410)]
    emit(sqlite_store, settings, "test", {"case": "down"})
    receiver.policy = lambda: Step(503)
    for _ in range(10):
        deliverer.run_once()
        clock.advance(10)
    last = sqlite_store.list_deliveries()[0]
    assert last.status == "failed" and "retry horizon passed" in (last.last_error or "")
    assert len(receiver.received) == 1 + last.attempts


def test_private_receivers_are_refused_at_delivery(sqlite_store: Store) -> None:
    settings = _settings("http://192.168.77.1/hook")
    emit(sqlite_store, settings, "test", {})
    _deliverer(sqlite_store, settings, Clock()).drain()
    (row,) = sqlite_store.list_deliveries()
    assert row.status == "failed" and "private network address" in (row.last_error or "")


def test_hundreds_of_queued_events_are_all_delivered(sqlite_store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver.url)
    ids = [emit(sqlite_store, settings, "test", {"n": i})[0] for i in range(300)]
    _deliverer(sqlite_store, settings, Clock()).drain(budget_seconds=30)
    assert sorted(receiver.delivered_ids()) == sorted(ids)
