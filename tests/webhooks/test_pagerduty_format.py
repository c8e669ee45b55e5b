"""PagerDuty Events API v2 bodies, checked against the documented schema by a real loopback receiver."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from monitor.alerts.acknowledge import acknowledge
from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.errors import Conflict
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import Event, new_event, outbox_entries
from monitor.webhooks.formats import render
from monitor.webhooks.routing import accepts
from tests.webhooks.receiver import Receiver

KEY = "0123456789abcdef0123456789ABCDEF"
NOW = time.time()
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")


class EventsV2Error(AssertionError):
    """A body PagerDuty's Events API v2 would refuse."""


def check_event(body: dict[str, Any]) -> None:
    """Raise EventsV2Error where ``body`` breaks the documented alert-event schema (docs: Send an Alert Event)."""
    allowed = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
    _expect(set(body) <= allowed, f"unknown fields {sorted(set(body) - allowed)}")
    _expect(isinstance(body.get("routing_key"), str) and len(body["routing_key"]) == 32, "routing_key: 32 characters")
    _expect(body.get("event_action") in ("trigger", "acknowledge", "resolve"), "event_action")
    _expect(isinstance(body.get("dedup_key", ""), str) and len(body.get("dedup_key", "")) <= 255, "dedup_key")
    if body["event_action"] == "trigger":
        _check_payload(body.get("payload"))
    else:
        _expect(bool(body.get("dedup_key")), "acknowledge/resolve need the dedup_key of the trigger")
    for link in body.get("links", []):
        _expect(isinstance(link.get("href"), str) and link["href"].startswith("http"), "links[].href")


def _check_payload(payload: Any) -> None:
    _expect(isinstance(payload, dict), "payload: required on trigger")
    _expect(isinstance(payload.get("summary"), str) and 0 < len(payload["summary"]) <= 1024, "payload.summary")
    _expect(isinstance(payload.get("source"), str) and payload["source"] != "", "payload.source")
    _expect(payload.get("severity") in ("critical", "error", "warning", "info"), "payload.severity")
    _expect(_TIME.match(str(payload.get("timestamp", "2020-01-01T00:00:00Z"))) is not None, "payload.timestamp")
    for key in ("component", "group", "class"):
        _expect(isinstance(payload.get(key, ""), str), f"payload.{key}")
    _expect(isinstance(payload.get("custom_details", {}), dict), "payload.custom_details")


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise EventsV2Error(what)


def test_checker_refuses_a_summary_over_1024_characters() -> None:
    body = {"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "x" * 1025}}
    with pytest.raises(EventsV2Error, match=r"payload\.summary"):
        check_event(body)


def test_trigger_then_resolve_share_the_alerts_fingerprint(sqlite_url: str, receiver: Receiver) -> None:
    receiver.secret = None
    hook = WebhookConfig(name="pd", url=receiver.url, format="pagerduty", routing_key_env="PD_KEY")
    rule = AlertRuleConfig.model_validate({"name": "credit-drift", "kind": "drift_share", "service": "credit"})
    settings = Settings(webhooks=(hook,), alerts=(rule,), dashboard_url="https://mlwatch.example.com")
    store = Store.open(sqlite_url, migrate=True)
    try:
        engine = AlertEngine(store, settings)
        credit = store.upsert_service("credit", task="classification")
        for share, at in ((0.5, NOW - 20), (0.0, NOW - 10)):
            store.add_check(
                credit, window_start=NOW - 7200, window_end=NOW - 3600, model_version="1", status="ok",
                trigger="schedule", summary=CheckSummary(drift_share=share), results={"features": []},
            )  # fmt: skip
            engine.tick(at)
        assert all(KEY not in d.payload for d in store.list_deliveries())  # the stored body never holds the key
        Deliverer(store, settings, http=httpx.Client(), environ={"PD_KEY": KEY}).drain()
    finally:
        store.close()
    trigger, resolve = sorted((r.json() for r in receiver.received), key=lambda b: b["event_action"] != "trigger")
    for body in (trigger, resolve):
        check_event(body)
    (alert_fingerprint,) = {trigger["dedup_key"], resolve["dedup_key"]}
    assert len(alert_fingerprint) == 64 and resolve["event_action"] == "resolve"
    assert trigger["payload"]["source"] == "credit" and trigger["payload"]["class"] == "drift_share"
    assert trigger["payload"]["severity"] == "warning" and trigger["routing_key"] == KEY
    assert trigger["links"] == [
        {"href": "https://mlwatch.example.com/alerts?service=credit", "text": "mlwatch dashboard"}
    ]


def test_an_unset_routing_key_variable_is_logged_and_retried(sqlite_url: str, receiver: Receiver) -> None:
    hook = WebhookConfig(name="pd", url=receiver.url, format="pagerduty", routing_key_env="PD_KEY")
    settings = Settings(webhooks=(hook,))
    store = Store.open(sqlite_url, migrate=True)
    try:
        event = new_event("alert.firing", {"rule": "r", "fingerprint": "f", "summary": "s"}, severity="critical")
        store.enqueue_deliveries(outbox_entries(settings, event, list(settings.webhooks)))
        Deliverer(store, settings, http=httpx.Client(), environ={}).drain()
        (delivery,) = store.list_deliveries()
    finally:
        store.close()
    assert delivery.status == "pending" and receiver.received == []
    assert delivery.last_error == "environment variable PD_KEY (the PagerDuty routing key) is not set"


@pytest.mark.parametrize(
    ("event_type", "severity", "action", "mapped"),
    [
        ("alert.firing", "critical", "trigger", "critical"),
        ("alert.reminder", "warning", "trigger", "warning"),
        ("retrain.failed", "warning", "trigger", "error"),
        ("test", "info", "trigger", "info"),
    ],
)
def test_event_types_map_to_actions_and_severities(event_type: str, severity: str, action: str, mapped: str) -> None:
    data = {"rule": "r", "fingerprint": "f" * 64, "summary": "x" * 5000, "service": "credit"}
    body = json.loads(render("pagerduty", Event("evt_1", event_type, NOW, severity, {}, data), Settings()))
    check_event({"routing_key": KEY, **body})
    assert body["event_action"] == action and body["payload"]["severity"] == mapped
    assert len(body["payload"]["summary"]) <= 1024 and "links" not in body


def test_pagerduty_receivers_get_only_alerts_unless_told_otherwise() -> None:
    plain = WebhookConfig(name="pd", url="http://127.0.0.1/", format="pagerduty", routing_key_env="K")
    told = plain.model_copy(update={"events": ("retrain.failed",)})
    promoted = Event("evt_1", "model.promoted", NOW)
    assert not accepts(plain, promoted) and accepts(plain, Event("evt_2", "alert.firing", NOW))
    assert accepts(told, Event("evt_3", "retrain.failed", NOW)) and accepts(plain, Event("evt_4", "test", NOW))


def test_acknowledging_in_mlwatch_acknowledges_the_pagerduty_incident(sqlite_url: str, receiver: Receiver) -> None:
    receiver.secret = None
    hook = WebhookConfig(name="pd", url=receiver.url, format="pagerduty", routing_key_env="PD_KEY")
    rule = AlertRuleConfig.model_validate({"name": "credit-drift", "kind": "drift_share", "service": "credit"})
    settings = Settings(webhooks=(hook,), alerts=(rule,))
    store = Store.open(sqlite_url, migrate=True)
    try:
        engine = AlertEngine(store, settings)
        credit = store.upsert_service("credit", task="classification")

        def check(share: float, at: float) -> None:
            store.add_check(
                credit, window_start=NOW - 7200, window_end=NOW - 3600, model_version="1", status="ok",
                trigger="schedule", summary=CheckSummary(drift_share=share), results={"features": []},
            )  # fmt: skip
            engine.tick(at)

        check(0.5, NOW - 30)
        (alert,) = store.list_alerts(state="firing")
        acked = acknowledge(store, settings, alert.id, "ana", NOW - 20, comment="looking")
        check(0.0, NOW - 10)
        Deliverer(store, settings, http=httpx.Client(), environ={"PD_KEY": KEY}).drain()
        audit = store.audit_entries(action="alert.ack")
    finally:
        store.close()
    assert acked.acked_by == "ana" and len(audit) == 1
    bodies = sorted(
        (r.json() for r in receiver.received),
        key=lambda b: ["trigger", "acknowledge", "resolve"].index(b["event_action"]),
    )
    for body in bodies:
        check_event(body)
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    assert len({b["dedup_key"] for b in bodies}) == 1  # one PagerDuty incident throughout


def test_acknowledging_a_resolved_alert_announces_nothing(sqlite_url: str) -> None:
    hook = WebhookConfig(name="pd", url="http://127.0.0.1:9/", format="pagerduty", routing_key_env="PD_KEY")
    rule = AlertRuleConfig.model_validate({"name": "credit-drift", "kind": "drift_share", "service": "credit"})
    settings = Settings(webhooks=(hook,), alerts=(rule,))
    store = Store.open(sqlite_url, migrate=True)
    try:
        credit = store.upsert_service("credit", task="classification")
        engine = AlertEngine(store, settings)
        for share, at in ((0.5, NOW - 20), (0.0, NOW - 10)):
            store.add_check(
                credit, window_start=NOW - 7200, window_end=NOW - 3600, model_version="1", status="ok",
                trigger="schedule", summary=CheckSummary(drift_share=share), results={"features": []},
            )  # fmt: skip
            engine.tick(at)
        before = [d.event_type for d in store.list_deliveries()]
        (resolved,) = store.list_alerts()
        with pytest.raises(Conflict):
            acknowledge(store, settings, resolved.id, "ana", NOW)
        after = [d.event_type for d in store.list_deliveries()]
    finally:
        store.close()
    assert before == after and "alert.acknowledged" not in after


def test_alertmanager_and_grouped_receivers_get_no_acknowledgement() -> None:
    acked = Event("evt_1", "alert.acknowledged", NOW, "warning", {"service": "credit"}, {"acked_by": "ana"})
    pd = WebhookConfig(name="pd", url="http://127.0.0.1/", format="pagerduty", routing_key_env="K")
    am = WebhookConfig(name="am", url="http://127.0.0.1/api/v2/alerts", format="alertmanager")
    grouped = pd.model_copy(update={"group_by": ("service",)})
    plain = WebhookConfig(name="ops", url="http://127.0.0.1/", format="json")
    assert accepts(pd, acked) and accepts(plain, acked)
    assert not accepts(am, acked) and not accepts(grouped, acked)
