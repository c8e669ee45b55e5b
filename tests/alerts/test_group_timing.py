"""Group timing across ticks and restarts: group_wait, group_interval, repeat_interval, and what stays ungrouped."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.records import Service
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit
from tests.webhooks.receiver import SECRET, Receiver

T0 = time.time() - 3600


def _settings(receiver: Receiver, *features: str, **grouping: Any) -> Settings:
    timing = {"group_by": ["service"], "group_wait": "30s", "group_interval": "60s", **grouping}
    hook = WebhookConfig.model_validate({"name": "ops", "url": receiver.url, "secret_env": "HOOK_SECRET", **timing})
    rules = [
        AlertRuleConfig.model_validate(
            {"name": f"credit-{f}", "kind": "feature_drift", "service": "credit", "feature": f}
        )
        for f in features
    ]
    return Settings(webhooks=(hook,), alerts=tuple(rules))


def _drift(store: Store, service: Service, drifted: dict[str, bool], at: float = T0) -> None:
    features = [{"name": f, "score": 0.3, "threshold": 0.1, "drifted": d} for f, d in drifted.items()]
    store.add_check(
        service, window_start=at - 3600, window_end=at, model_version="1", status="ok",
        trigger="schedule", summary=CheckSummary(), results={"features": features},
    )  # fmt: skip


def _deliver(store: Store, settings: Settings) -> None:
    Deliverer(store, settings, environ={"HOOK_SECRET": SECRET}, http=httpx.Client()).drain()


def _sent(receiver: Receiver) -> list[tuple[str, list[str]]]:
    """(type, sorted rules) of each notification, in arrival order."""
    return [(b["type"], sorted(a["rule"] for a in b["data"]["alerts"])) for b in (r.json() for r in receiver.received)]


@pytest.fixture
def credit(store: Store) -> Service:
    return store.upsert_service("credit", task="classification")


def test_a_group_buffered_before_a_restart_is_notified_once_after_it(
    store_url: str, store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver, "age", "income")
    _drift(store, credit, {"age": True, "income": True})
    AlertEngine(store, settings).tick(T0)  # group_wait has 30 s to run when the worker stops
    assert store.delivery_counts()["pending"] == 0
    store.close()
    restarted = Store.open(store_url)
    try:
        engine = AlertEngine(restarted, settings)
        engine.tick(T0 + 29)
        engine.tick(T0 + 31)
        engine.tick(T0 + 36)
        _deliver(restarted, settings)
    finally:
        restarted.close()
    assert _sent(receiver) == [("alert.firing", ["credit-age", "credit-income"])]


def test_an_alert_joining_a_notified_group_waits_for_the_group_interval(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver, "age", "income")
    engine = AlertEngine(store, settings)
    _drift(store, credit, {"age": True, "income": False})
    engine.tick(T0)
    engine.tick(T0 + 30)
    _drift(store, credit, {"age": True, "income": True})
    engine.tick(T0 + 40)  # income fires 10 s after the group's notification
    engine.tick(T0 + 85)
    _deliver(store, settings)
    assert _sent(receiver) == [("alert.firing", ["credit-age"])]
    engine.tick(T0 + 90)  # group_interval after the first notification
    _deliver(store, settings)
    assert _sent(receiver)[1] == ("alert.firing", ["credit-age", "credit-income"])


def test_an_unchanged_group_is_notified_again_after_its_repeat_interval(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver, "age", repeat_interval="10m")
    engine = AlertEngine(store, settings)
    _drift(store, credit, {"age": True})
    for at in (T0, T0 + 30, T0 + 300, T0 + 629):
        engine.tick(at)
    _deliver(store, settings)
    assert len(receiver.received) == 1
    engine.tick(T0 + 630)
    _deliver(store, settings)
    assert _sent(receiver) == [("alert.firing", ["credit-age"])] * 2


def test_an_alert_that_resolves_before_its_group_is_notified_is_never_sent(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    settings = _settings(receiver, "age")
    engine = AlertEngine(store, settings)
    _drift(store, credit, {"age": True})
    engine.tick(T0)
    _drift(store, credit, {"age": False})
    engine.tick(T0 + 10)
    engine.tick(T0 + 40)
    _deliver(store, settings)
    assert receiver.received == []
    assert [a.state for a in store.list_alerts()] == ["resolved"]


def test_other_events_go_to_a_grouped_receiver_at_once_and_alone(store: Store, receiver: Receiver) -> None:
    settings = _settings(receiver)
    emit(store, settings, "model.promoted", {"service": "credit", "version": "7"})
    _deliver(store, settings)
    (body,) = [r.json() for r in receiver.received]
    assert body["type"] == "model.promoted" and "alerts" not in body["data"]


def test_an_ungrouped_receiver_beside_a_grouped_one_gets_each_alert_at_once(
    store: Store, credit: Service, receiver: Receiver
) -> None:
    other = Receiver()
    try:
        plain = WebhookConfig(name="plain", url=other.url, secret_env="HOOK_SECRET")
        grouped = _settings(receiver, "age", "income")
        settings = grouped.model_copy(update={"webhooks": (*grouped.webhooks, plain)})
        _drift(store, credit, {"age": True, "income": True})
        AlertEngine(store, settings).tick(T0)
        _deliver(store, settings)
        assert receiver.received == []  # the grouped one waits for group_wait
        assert sorted(r.json()["data"]["rule"] for r in other.received) == ["credit-age", "credit-income"]
    finally:
        other.stop()
