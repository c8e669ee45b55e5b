"""The ``alertmanager`` format against a real Alertmanager: alerts appear, group, re-post, resolve; refusals logged."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.records import Service
from monitor.store import Store
from monitor.store.outbox import OutboxEntry
from monitor.webhooks.alertmanager import EVENT_ALERTNAME, label_name
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import Event
from monitor.webhooks.formats import render
from tests.webhooks.alertmanager import Alertmanager
from tests.webhooks.receiver import Receiver

NOW = time.time()
"""Set again as each test starts (``_clock``): Alertmanager ends alerts by the real clock, and a
time taken when the module was collected is minutes old by the time a test of a full run posts."""


@pytest.fixture(autouse=True)
def _clock() -> None:
    global NOW
    NOW = time.time()


DASHBOARD = "https://mlwatch.example.com"


def _rule(name: str, threshold: float = 0.3, **extra: Any) -> AlertRuleConfig:
    fields = {"name": name, "kind": "drift_share", "service": "credit", "threshold": threshold, **extra}
    return AlertRuleConfig.model_validate(fields)


def _settings(am: Alertmanager, *rules: AlertRuleConfig, also: tuple[WebhookConfig, ...] = ()) -> Settings:
    hook = WebhookConfig(name="am", url=am.url, format="alertmanager")
    return Settings(webhooks=(hook, *also), alerts=rules, dashboard_url=DASHBOARD)


def _drift(store: Store, service: Service, share: float) -> None:
    summary = {"drift_share": share, "drifted_features": ["income"] if share else []}
    store.add_check(
        service, window_start=NOW - 7200, window_end=NOW - 3600, model_version="1", status="ok",
        trigger="schedule", summary=CheckSummary.decode(summary), results={"features": []},
    )  # fmt: skip


def _deliver(store: Store, settings: Settings) -> None:
    Deliverer(store, settings, http=httpx.Client()).drain()


def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _notifications(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def test_a_firing_alert_appears_in_alertmanager_with_its_labels(local: Store, alertmanager: Alertmanager) -> None:
    settings = _settings(alertmanager, _rule("credit-drift", labels={"team-name": "risk"}))
    _drift(local, local.upsert_service("credit", task="classification"), 0.5)
    AlertEngine(local, settings).tick(NOW - 5)
    _deliver(local, settings)
    assert [d.status for d in local.list_deliveries()] == ["delivered"]
    (alert,) = alertmanager.alerts()
    assert alert["labels"] == {
        "alertname": "credit-drift", "service": "credit", "kind": "drift_share",
        "severity": "warning", "team_name": "risk",
    }  # fmt: skip
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["dashboard_url"] == f"{DASHBOARD}/alerts?service=credit"
    assert "50% of features drifted" in alert["annotations"]["summary"]
    assert alert["generatorURL"] == f"{DASHBOARD}/alerts?service=credit"


def test_two_alerts_of_one_service_arrive_grouped_and_resolve(
    local: Store, alertmanager: Alertmanager, notified: Receiver
) -> None:
    settings = _settings(alertmanager, _rule("credit-drift"), _rule("credit-drift-high", 0.4))
    engine = AlertEngine(local, settings)
    credit = local.upsert_service("credit", task="classification")
    _drift(local, credit, 0.5)
    engine.tick(
        time.time()
    )  # started now: Alertmanager waits group_wait for the group (an older alert flushes at once)
    _deliver(local, settings)
    _wait(lambda: len(notified.received) >= 1)
    (group,) = _notifications(notified)  # one notification for the service's group
    assert group["status"] == "firing" and group["groupLabels"] == {"service": "credit"}
    assert sorted(a["labels"]["alertname"] for a in group["alerts"]) == ["credit-drift", "credit-drift-high"]
    _drift(local, credit, 0.0)
    cleared = time.time()
    engine.tick(cleared)
    _deliver(local, settings)
    _wait(lambda: any(n["status"] == "resolved" for n in _notifications(notified)))
    resolved = next(n for n in _notifications(notified) if n["status"] == "resolved")
    assert {a["status"] for a in resolved["alerts"]} == {"resolved"}
    assert all(a["endsAt"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(cleared))) for a in resolved["alerts"])
    assert alertmanager.alerts() == []  # resolved alerts are no longer active


def test_reminders_re_post_an_acknowledged_alert_to_alertmanager_only(local: Store, alertmanager: Alertmanager) -> None:
    people = Receiver(secret=None)
    chat = WebhookConfig(name="chat", url=people.url)
    try:
        settings = _settings(alertmanager, _rule("credit-drift", repeat_interval="60s"), also=(chat,))
        engine = AlertEngine(local, settings)
        _drift(local, local.upsert_service("credit", task="classification"), 0.5)
        engine.tick(NOW - 150)
        (alert,) = local.list_alerts()
        local.ack_alert(alert.id, "alice", NOW - 140)
        engine.tick(NOW - 80)  # a repeat interval later: due again
        _deliver(local, settings)
        (held,) = alertmanager.alerts()
        ends = held["endsAt"]
        assert ends.startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(NOW - 80 + 3 * 60)))  # re-posted, 3x60s on
        assert [json.loads(r.body)["type"] for r in people.received] == ["alert.firing"]  # people: no reminder
        by_receiver = sorted((d.receiver, d.event_type) for d in local.list_deliveries())
        assert by_receiver == [("am", "alert.firing"), ("am", "alert.reminder"), ("chat", "alert.firing")]
    finally:
        people.stop()


def test_a_refused_post_is_logged_with_alertmanagers_reason(local: Store, alertmanager: Alertmanager) -> None:
    settings = _settings(alertmanager)
    malformed = [{"labels": {"alertname": "x"}, "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}]
    local.enqueue_deliveries([OutboxEntry("evt_bad", "am", "alert.firing", json.dumps(malformed), NOW - 1)])
    _deliver(local, settings)
    (delivery,) = local.list_deliveries()
    assert delivery.status == "failed" and delivery.last_status_code == 400
    assert delivery.last_error is not None and "start time must be before end time" in delivery.last_error


def _body(event: Event) -> list[dict[str, Any]]:
    return list(json.loads(render("alertmanager", event, Settings())))


def test_other_events_are_short_lived_mlwatch_event_alerts() -> None:
    event = Event("evt_1", "retrain.failed", NOW, "warning", {}, {"service": "credit", "error": "boom"})
    (alert,) = _body(event)
    assert alert["labels"] == {
        "alertname": EVENT_ALERTNAME, "event_type": "retrain.failed", "severity": "warning", "service": "credit",
    }  # fmt: skip
    assert "generatorURL" not in alert and "dashboard_url" not in alert["annotations"]  # none configured
    starts, ends = (time.mktime(time.strptime(alert[k][:19], "%Y-%m-%dT%H:%M:%S")) for k in ("startsAt", "endsAt"))
    assert ends - starts == 300


def test_a_firing_alert_without_a_known_repeat_interval_holds_for_an_hour() -> None:
    data = {"rule": "r", "fingerprint": "f", "summary": "s", "started_at": NOW}
    (alert,) = _body(Event("evt_1", "alert.firing", NOW, "critical", {"rule": "r", "check_id": "7"}, data))
    assert alert["labels"] == {"alertname": "r"} and alert["annotations"]["check_id"] == "7"
    starts, ends = (time.mktime(time.strptime(alert[k][:19], "%Y-%m-%dT%H:%M:%S")) for k in ("startsAt", "endsAt"))
    assert ends - starts == 3600


@pytest.mark.parametrize(("name", "label"), [("team-name", "team_name"), ("9lives", "_9lives"), ("a.b c", "a_b_c")])
def test_label_names_alertmanager_refuses_are_rewritten(name: str, label: str) -> None:
    assert label_name(name) == label
