"""Grouping and inhibition end to end: stored checks -> engine ticks -> groups in the store -> real receivers.

The storm: 40 feature-drift alerts and a no-data alert on one service reach a signed JSON
receiver and a real Alertmanager as one notification per receiver and change, drift muted
while no data arrives, and all of them resolved in one notification. Runs on SQLite and
PostgreSQL; ticks take explicit times in the recent past, so their rows are due at once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, InhibitRuleConfig, Settings, WebhookConfig
from monitor.records import PredictionRecord, Service
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.schema import EVENT_SCHEMA
from tests.webhooks.alertmanager import Alertmanager
from tests.webhooks.receiver import SECRET, Receiver

FEATURES = [f"f{i:02d}" for i in range(40)]
GROUPED = {"group_by": ["service"], "group_wait": "30s", "group_interval": "60s"}
MUTE_DRIFT = InhibitRuleConfig.model_validate(
    {
        "source_match": {"kind": "no_data"},
        "target_match": {"kind": ["feature_drift", "drift_share"]},
        "equal": ["service"],
    }
)


def _rules() -> tuple[AlertRuleConfig, ...]:
    drift = [{"name": f"credit-{f}", "kind": "feature_drift", "service": "credit", "feature": f} for f in FEATURES]
    silent = {"name": "credit-silent", "kind": "no_data", "service": "credit", "threshold": 10}
    return tuple(AlertRuleConfig.model_validate(r) for r in [*drift, silent])


def _hook(url: str, **extra: Any) -> WebhookConfig:
    return WebhookConfig.model_validate({"name": "ops", "url": url, "secret_env": "HOOK_SECRET", **GROUPED, **extra})


def _drift(store: Store, service: Service, drifted: bool, at: float) -> None:
    features = [
        {"name": f, "method": "wasserstein", "score": 0.3 if drifted else 0.01, "threshold": 0.1, "drifted": drifted}
        for f in FEATURES
    ]
    store.add_check(
        service, window_start=at - 3600, window_end=at, model_version="1", status="ok",
        trigger="schedule", summary=CheckSummary(drift_share=1.0 if drifted else 0.0), results={"features": features},
    )  # fmt: skip


def _deliver(store: Store, settings: Settings) -> None:
    Deliverer(store, settings, environ={"HOOK_SECRET": SECRET}, http=httpx.Client()).drain()


def _bodies(receiver: Receiver) -> list[dict[str, Any]]:
    assert all(r.signature_ok for r in receiver.received)
    return [r.json() for r in receiver.received]


def _states(body: dict[str, Any]) -> dict[str, str]:
    return {a["rule"]: a["state"] for a in body["data"]["alerts"]}


@pytest.fixture
def credit(store: Store) -> Service:
    return store.upsert_service("credit", task="classification")


def test_a_storm_of_drift_and_no_data_is_one_notification_per_receiver_and_change(
    store: Store, credit: Service, receiver: Receiver, alertmanager: Alertmanager, notified: Receiver
) -> None:
    am = WebhookConfig.model_validate({"name": "am", "url": alertmanager.url, "format": "alertmanager", **GROUPED})
    settings = Settings(webhooks=(_hook(receiver.url), am), alerts=_rules(), inhibit_rules=(MUTE_DRIFT,))
    engine = AlertEngine(store, settings)
    t0 = time.time() - 600
    _drift(store, credit, True, t0)
    engine.tick(t0)  # no prediction yet: no data fires, and mutes the 40 drifted features
    engine.tick(t0 + 20)
    _deliver(store, settings)
    assert receiver.received == []  # group_wait: the group is still collecting
    engine.tick(t0 + 31)
    _deliver(store, settings)
    (first,) = _bodies(receiver)
    assert first["type"] == "alert.firing" and _states(first) == {"credit-silent": "firing"}
    assert first["data"]["group"]["labels"] == {"service": "credit"} and first["labels"] == {"service": "credit"}
    Draft202012Validator(EVENT_SCHEMA).validate(first)
    silent = next(a for a in store.list_alerts() if a.kind == "no_data")
    drift = [a for a in store.list_alerts() if a.kind == "feature_drift"]
    assert len(drift) == 40 and {(a.state, a.inhibited_by) for a in drift} == {("firing", silent.id)}
    assert [a["labels"]["alertname"] for a in alertmanager.alerts()] == ["credit-silent"]

    store.add_predictions(credit, [PredictionRecord("r1", t0 + 90, {"x": 1.0}, 1, None, 5.0, "1", "ok")])
    engine.tick(t0 + 100)  # data again: no data resolves, the drift alerts are no longer muted
    _deliver(store, settings)
    second = _bodies(receiver)[1]
    assert second["type"] == "alert.firing"
    assert _states(second) == {"credit-silent": "resolved", **{f"credit-{f}": "firing" for f in FEATURES}}
    assert {a.inhibited_by for a in store.list_alerts() if a.kind == "feature_drift"} == {None}
    assert sorted(a["labels"]["alertname"] for a in alertmanager.alerts(active="true")) == sorted(
        f"credit-{f}" for f in FEATURES
    )

    _drift(store, credit, False, t0 + 150)
    engine.tick(t0 + 200)
    engine.tick(t0 + 205)
    _deliver(store, settings)
    third = _bodies(receiver)[2]
    assert third["type"] == "alert.resolved" and _states(third) == {f"credit-{f}": "resolved" for f in FEATURES}
    assert len(receiver.received) == 3
    by_receiver = sorted((d.receiver, d.event_type) for d in store.list_deliveries())
    assert by_receiver == sorted([(r, t) for r in ("am", "ops") for t in ("alert.firing",) * 2 + ("alert.resolved",)])
    assert all(d.status == "delivered" for d in store.list_deliveries())
    assert alertmanager.alerts(active="true") == []
    _wait(lambda: any(_am_resolved(n) == len(FEATURES) for n in _notified(notified)))


def _notified(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def _am_resolved(notification: dict[str, Any]) -> int:
    """How many drift alerts a resolved Alertmanager notification lists."""
    if notification["status"] != "resolved":
        return 0
    return sum(1 for a in notification["alerts"] if a["labels"]["kind"] == "feature_drift")


def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
