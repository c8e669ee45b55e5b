"""A grouped notification in every format: each lists the group's alerts, within the receiver's documented limits."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from monitor.alerts.grouping import group_event, group_key
from monitor.config import Settings, WebhookConfig
from monitor.store.groups import AlertGroup, GroupMember
from monitor.webhooks.events import Event
from monitor.webhooks.formats import SLACK_SECTION_TEXT, render
from monitor.webhooks.presentation import alerts_of, headline
from monitor.webhooks.schema import EVENT_SCHEMA
from tests.webhooks.slack_blocks import check_payload
from tests.webhooks.test_msteams_format import HOSTILE, check_message
from tests.webhooks.test_pagerduty_format import check_event

NOW = time.time()
DASHBOARD = "https://mlwatch.example.com"
HOOK = WebhookConfig(name="ops", url="https://hooks.example.com/x", group_by=("service",), repeat_interval=600)
LABELS = {"service": "credit"}


def _member(i: int, state: str = "firing", summary: str = "") -> GroupMember:
    labels = {
        "rule": f"credit-f{i:02d}",
        "kind": "feature_drift",
        "severity": "warning",
        **LABELS,
        "feature": f"f{i:02d}",
    }
    data = {
        "id": i + 1, "fingerprint": f"fp{i}", "rule": labels["rule"], "kind": "feature_drift", "service": "credit",
        "state": state, "severity": "warning", "labels": labels, "value": 0.3, "threshold": 0.1,
        "summary": summary or f"credit: feature f{i:02d} drifted", "started_at": NOW - 60, "fired_at": NOW - 60,
        "resolved_at": NOW - 5 if state == "resolved" else None,
    }  # fmt: skip
    return GroupMember(1, f"fp{i}", i + 1, state, state == "resolved", data, NOW)


def _group(*members: GroupMember) -> Event:
    group = AlertGroup(1, "ops", group_key(LABELS), LABELS, NOW - 60, NOW, None)
    return group_event(group, members, HOOK, NOW)


def _body(format_name: str, event: Event) -> Any:
    return json.loads(render(format_name, event, Settings(dashboard_url=DASHBOARD)))


STORM = _group(*(_member(i) for i in range(40)))


def test_alerts_of_reads_a_group_or_a_single_alert() -> None:
    assert [a["rule"] for a in alerts_of(STORM)][:2] == ["credit-f00", "credit-f01"] and len(alerts_of(STORM)) == 40
    single = Event("evt_1", "alert.firing", NOW, "warning", {}, {"rule": "r", "summary": "s"})
    assert alerts_of(single) == [single.data]
    assert headline(STORM) == "[FIRING:40] service=credit: 40 firing"


def test_the_json_body_carries_the_group_and_each_alert_as_a_single_event_would() -> None:
    body = _body("json", STORM)
    Draft202012Validator(EVENT_SCHEMA).validate(body)
    assert body["data"]["group"] == {"key": group_key(LABELS), "labels": LABELS}
    assert body["data"]["alerts"][3]["labels"]["feature"] == "f03" and body["labels"] == LABELS


def test_slack_lists_the_group_within_its_limits_and_escaped() -> None:
    hostile = _group(*(_member(i, summary=f"<!here> {'x' * 150} & <https://evil.example|x>") for i in range(40)))
    body = _body("slack", hostile)
    check_payload(body, links={f"{DASHBOARD}/alerts?service=credit"})
    listing = body["blocks"][1]["text"]["text"]
    assert len(listing) <= SLACK_SECTION_TEXT and "&lt;!here&gt;" in listing
    shown = listing.count("\u2022 ")
    assert 10 <= shown < 40 and listing.endswith(f"and {40 - shown} more")


def test_teams_lists_twenty_alerts_then_counts_the_rest_escaped() -> None:
    card = _body("msteams", _group(*(_member(i, summary=HOSTILE) for i in range(40))))
    check_message(card, links={f"{DASHBOARD}/alerts?service=credit"})
    lines = [b["text"] for b in card["attachments"][0]["content"]["body"][1:] if b["type"] == "TextBlock"]
    assert len(lines) == 21 and "credit\\-f00" in lines[0] and lines[-1] == "\u2026 and 20 more"


def test_pagerduty_opens_one_incident_per_group_and_resolves_it_together() -> None:
    trigger = _body("pagerduty", STORM)
    resolved = _body("pagerduty", _group(*(_member(i, "resolved") for i in range(40))))
    for body in (trigger, resolved):
        check_event({**body, "routing_key": "0123456789abcdef0123456789ABCDEF"})
    assert trigger["dedup_key"] == resolved["dedup_key"] == group_key(LABELS)
    assert (trigger["event_action"], resolved["event_action"]) == ("trigger", "resolve")
    details = trigger["payload"]["custom_details"]
    assert details["alert_count"] == 40 and len(details["alerts"]) == 40
    assert trigger["payload"]["class"] == "feature_drift" and trigger["payload"]["source"] == "credit"


@pytest.mark.parametrize("resolved", [0, 1])
def test_alertmanager_gets_every_alert_of_the_group_in_one_post(resolved: int) -> None:
    members = [_member(0, "resolved" if resolved else "firing"), _member(1)]
    alerts = _body("alertmanager", _group(*members))
    assert [a["labels"]["alertname"] for a in alerts] == ["credit-f00", "credit-f01"]
    assert alerts[0]["labels"]["feature"] == "f00" and "check_id" not in alerts[0]["labels"]
    ends = [time.mktime(time.strptime(a["endsAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone for a in alerts]
    held = NOW + 3 * 600
    assert abs(ends[1] - held) < 2  # firing: HOLD_FACTOR repeat intervals of the group ahead
    assert abs(ends[0] - (NOW - 5 if resolved else held)) < 2
