"""The alert lifecycle end to end: stored checks -> engine ticks -> outbox -> a real signed receiver.

Runs on SQLite and PostgreSQL. Ticks are given explicit times, so ``for`` durations and
repeat intervals are exercised without waiting.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.records import Service
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.schema import EVENT_SCHEMA
from tests.webhooks.receiver import SECRET, Receiver

T0 = time.time() - 3600  # ticks in the recent past, so their events are due at once


def _settings(receiver: Receiver, **rule: Any) -> Settings:
    fields = {"name": "credit-drift", "kind": "drift_share", "service": "credit", "threshold": 0.3, **rule}
    hook = WebhookConfig(name="ops", url=receiver.url, secret_env="HOOK_SECRET")
    return Settings(webhooks=(hook,), alerts=(AlertRuleConfig.model_validate(fields),))


def _drift(store: Store, service: Service, share: float) -> int:
    summary = {"drift_share": share, "drifted_features": ["income"] if share else []}
    return store.add_check(
        service, window_start=T0 - 3600, window_end=T0, model_version="1", status="ok",
        trigger="schedule", summary=CheckSummary.decode(summary), results={"features": []},
    )  # fmt: skip


def _deliver(store: Store, settings: Settings) -> None:
    Deliverer(store, settings, environ={"HOOK_SECRET": SECRET}, http=httpx.Client()).drain()


def _sent(receiver: Receiver) -> list[tuple[str, int]]:
    """(event type, alert id) of every signed notification received, in the order the events happened."""
    assert all(r.signature_ok for r in receiver.received)
    bodies = sorted((r.json() for r in receiver.received), key=lambda b: datetime.fromisoformat(b["timestamp"]))
    return [(b["type"], b["data"]["id"]) for b in bodies]


@pytest.fixture
def credit(store: Store) -> Service:
    return store.upsert_service("credit", task="classification")


def test_alert_fires_only_after_for_duration(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver, **{"for": "60s"})
    engine = AlertEngine(store, settings)
    check_id = _drift(store, credit, 0.5)
    for at in (T0, T0 + 30, T0 + 59):
        engine.tick(at)
        _deliver(store, settings)
    assert receiver.received == []
    assert [a.state for a in store.list_alerts()] == ["pending"]
    engine.tick(T0 + 61)
    _deliver(store, settings)
    (alert,) = store.list_alerts()
    assert alert.state == "firing" and alert.started_at == T0 and alert.fired_at == T0 + 61
    assert _sent(receiver) == [("alert.firing", alert.id)]
    body = receiver.received[0].json()
    assert body["schema"] == "mlwatch.event/v1" and body["severity"] == "warning"
    labels = {"rule": "credit-drift", "kind": "drift_share", "severity": "warning", "service": "credit"}
    assert body["labels"] == {**labels, "check_id": str(check_id)}  # the check that started it, for its report
    assert body["data"]["value"] == 0.5 and "50% of features drifted" in body["data"]["summary"]
    Draft202012Validator(EVENT_SCHEMA).validate(body)


def test_a_breach_that_clears_while_pending_sends_nothing(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver, **{"for": "5m"})
    engine = AlertEngine(store, settings)
    _drift(store, credit, 0.5)
    engine.tick(T0)
    _drift(store, credit, 0.1)
    engine.tick(T0 + 10)
    _deliver(store, settings)
    assert receiver.received == []
    assert [a.state for a in store.list_alerts()] == ["resolved"]


def test_exactly_one_notification_per_firing_and_one_per_resolve(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver)
    engine = AlertEngine(store, settings)
    _drift(store, credit, 0.5)
    for i in range(5):
        engine.tick(T0 + i * 5)
    _drift(store, credit, 0.0)
    for i in range(5, 10):
        engine.tick(T0 + i * 5)
    _drift(store, credit, 0.8)
    engine.tick(T0 + 60)
    _deliver(store, settings)
    first, second = sorted(a.id for a in store.list_alerts())
    assert _sent(receiver) == [("alert.firing", first), ("alert.resolved", first), ("alert.firing", second)]
    assert len({r.event_id for r in receiver.received}) == 3


def test_dedupe_by_fingerprint_survives_a_restart(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver)
    _drift(store, credit, 0.5)
    AlertEngine(store, settings).tick(T0)
    AlertEngine(store, settings).tick(T0 + 5)  # a restarted worker
    AlertEngine(store, settings).tick(T0 + 10)
    _deliver(store, settings)
    assert len(store.list_alerts()) == 1
    assert [t for t, _ in _sent(receiver)] == ["alert.firing"]


def test_nothing_is_sent_while_silenced(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver)
    engine = AlertEngine(store, settings)
    store.add_silence({"service": "credit"}, starts_at=T0 - 1, ends_at=T0 + 100, created_by="ops", comment="deploy")
    _drift(store, credit, 0.5)
    engine.tick(T0)
    engine.tick(T0 + 50)
    _deliver(store, settings)
    assert receiver.received == []
    assert [a.state for a in store.list_alerts()] == ["firing"]  # recorded, just not notified
    engine.tick(T0 + 101)  # the silence is over and it still fires: notify now, once
    engine.tick(T0 + 110)
    _deliver(store, settings)
    assert [t for t, _ in _sent(receiver)] == ["alert.firing"]


def test_an_alert_that_fired_and_cleared_under_silence_is_never_announced(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver)
    engine = AlertEngine(store, settings)
    store.add_silence({"rule": "credit-drift"}, starts_at=T0 - 1, ends_at=T0 + 100, created_by="ops")
    _drift(store, credit, 0.5)
    engine.tick(T0)
    _drift(store, credit, 0.0)
    engine.tick(T0 + 10)
    engine.tick(T0 + 200)
    _deliver(store, settings)
    assert receiver.received == []
    assert [a.state for a in store.list_alerts()] == ["resolved"]


def test_reminders_repeat_until_acknowledged(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver, repeat_interval="60s")
    engine = AlertEngine(store, settings)
    _drift(store, credit, 0.5)
    for at in (T0, T0 + 30, T0 + 61, T0 + 90, T0 + 122):
        engine.tick(at)
    (alert,) = store.list_alerts()
    store.ack_alert(alert.id, "alice", T0 + 130, "looking")
    engine.tick(T0 + 190)
    engine.tick(T0 + 260)
    _deliver(store, settings)
    assert [t for t, _ in _sent(receiver)] == ["alert.firing", "alert.reminder", "alert.reminder"]
    assert store.get_alert(alert.id).acked_by == "alice"


def test_removing_a_rule_resolves_its_alerts(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver)
    api_rule = {"name": "api-drift", "kind": "drift_share", "service": "credit", "threshold": 0.1}
    store.put_alert_rule("api-drift", api_rule, actor="alice")
    engine = AlertEngine(store, settings)
    _drift(store, credit, 0.5)
    engine.tick(T0)
    store.delete_alert_rule("api-drift", actor="alice")
    engine.tick(T0 + 5)
    _deliver(store, settings)
    by_rule = {(a.rule, a.state) for a in store.list_alerts()}
    assert by_rule == {("credit-drift", "firing"), ("api-drift", "resolved")}
    assert sorted(t for t, _ in _sent(receiver)) == ["alert.firing", "alert.firing", "alert.resolved"]


def test_lifecycle_is_recorded_in_the_audit_log(store: Store, credit: Service, receiver: Receiver) -> None:
    settings = _settings(receiver)
    engine = AlertEngine(store, settings)
    _drift(store, credit, 0.5)
    engine.tick(T0)
    (alert,) = store.list_alerts()
    store.ack_alert(alert.id, "alice", T0 + 1)
    _drift(store, credit, 0.0)
    engine.tick(T0 + 5)
    actions = [e.action for e in store.audit_entries(target=f"alert:{alert.id}")]
    assert actions == ["alert.resolved", "alert.ack", "alert.firing"]


def test_config_rules_are_synced_into_the_store(store: Store, receiver: Receiver) -> None:
    AlertEngine(store, _settings(receiver))
    AlertEngine(store, _settings(receiver, threshold=0.4))  # restarted with an edited mlwatch.yaml
    (rule,) = store.list_alert_rules()
    assert (rule.name, rule.source, rule.spec["threshold"], rule.spec["for"]) == ("credit-drift", "config", 0.4, 0.0)


def test_workers_ticking_at_once_raise_one_alert_and_one_notification(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver)
    engines = [AlertEngine(store, settings) for _ in range(4)]
    _drift(store, credit, 0.5)
    threads = [threading.Thread(target=e.tick, args=(T0 + i * 0.001,)) for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list_alerts()) == 1
    assert len(store.list_deliveries()) == 1
