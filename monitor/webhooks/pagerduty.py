"""The ``pagerduty`` format: a PagerDuty Events API v2 event (``POST https://events.pagerduty.com/v2/enqueue``).

    {"routing_key": "<32 characters>", "event_action": "trigger", "dedup_key": "<fingerprint>",
     "payload": {"summary": "...", "source": "credit", "severity": "warning",
                 "timestamp": "2026-11-26T10:00:00Z", "component": "income", "group": "credit",
                 "class": "feature_drift", "custom_details": {...}},
     "client": "mlwatch", "links": [{"href": "https://mlwatch.example.com/alerts?service=credit",
                                     "text": "mlwatch dashboard"}]}

``event_action`` follows the event type: ``alert.firing`` and ``alert.reminder`` trigger
(PagerDuty folds a repeated trigger into the open alert of its ``dedup_key``),
``alert.resolved`` resolves, ``alert.acknowledged`` (an operator acknowledged the alert in
mlwatch, see ``monitor.alerts.acknowledge``) acknowledges. ``dedup_key`` is the alert's
fingerprint, so trigger and resolve meet on one PagerDuty alert; other events use their
event id. A grouped notification (``group_by``) is one incident per group: ``dedup_key`` is
the group's key, ``trigger`` while an alert of it fires, ``resolve`` once all have resolved,
and ``custom_details.alerts`` lists them.

The routing key is a secret: it is read from the variable named by the receiver's
``routing_key_env`` when the body is posted (``with_routing_key``), never rendered into the
stored body, so the delivery log that viewers can read does not hold it. Receivers of this
format are sent ``alert.*`` events unless their ``events`` say otherwise (routing.py): a
model promotion should not open an incident.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from monitor.store.codec import dumps, loads
from monitor.webhooks.presentation import alerts_of, cut, dashboard_link, group_of, headline, rfc3339

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.webhooks.events import Event

SUMMARY_LIMIT = 1024
GROUP_DETAILS = 100
"""Alerts of a group listed in ``custom_details`` (PagerDuty takes 512 KB a body; 100 stay far below)."""
DEDUP_KEY_LIMIT = 255
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
"""An Integration Key: 32 letters and digits (PagerDuty's docs: "the 32 character Integration Key")."""
_ACTIONS = {"alert.resolved": "resolve", "alert.acknowledged": "acknowledge"}
_SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}


def event_action(event_type: str) -> str:
    """``trigger``, ``acknowledge`` or ``resolve`` for an mlwatch event type."""
    return _ACTIONS.get(event_type, "trigger")


def severity_of(event: Event) -> str:
    """PagerDuty's severity: mlwatch's own, except that a failed job below critical is an ``error``."""
    if event.type.endswith(".failed") and event.severity != "critical":
        return "error"
    return _SEVERITIES.get(event.severity, "info")


def dedup_key(event: Event) -> str:
    """The group's key, else the alert's fingerprint (the same on trigger and resolve), else the event id."""
    group = group_of(event)
    key = group.get("key") if group is not None else event.data.get("fingerprint")
    return cut(str(key or event.id), DEDUP_KEY_LIMIT)


def render_pagerduty(event: Event, settings: Settings) -> str:
    """The Events API v2 body of ``event``, without ``routing_key`` (added when posted)."""
    action = event_action(event.type)
    body: dict[str, Any] = {"event_action": action, "dedup_key": dedup_key(event)}
    if action == "trigger":
        body["payload"] = _payload(event)
        body["client"] = "mlwatch"
        link = dashboard_link(settings, event)
        if link is not None:
            body["client_url"] = link
            body["links"] = [{"href": link, "text": "mlwatch dashboard"}]
    return dumps(body)


def _payload(event: Event) -> dict[str, Any]:
    labels = event.labels
    data = _common(alerts_of(event))
    service = str(data.get("service") or labels.get("service") or "mlwatch")
    component = labels.get("feature") or labels.get("segment") or labels.get("host") or data.get("kind") or event.type
    return {
        "summary": cut(headline(event), SUMMARY_LIMIT),
        "source": service,
        "severity": severity_of(event),
        "timestamp": rfc3339(event.occurred_at),
        "component": str(component),
        "group": service,
        "class": str(data.get("kind") or event.type),
        "custom_details": _details(event),
    }


def _common(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The service and kind every alert of the list shares (all of the one alert's data for a single alert)."""
    if len(alerts) == 1:
        return alerts[0]
    return {k: alerts[0].get(k) for k in ("service", "kind") if len({str(a.get(k)) for a in alerts}) == 1}


def _details(event: Event) -> dict[str, Any]:
    if group_of(event) is not None:
        listed = [_kept(a) for a in alerts_of(event)[:GROUP_DETAILS]]
        details: dict[str, Any] = {"alerts": listed, "alert_count": len(alerts_of(event))}
    else:
        details = _kept(event.data)
    if not event.type.startswith("alert."):
        details.update(event.data)
    return {**details, "labels": event.labels, "event_type": event.type, "event_id": event.id}


def _kept(alert: dict[str, Any]) -> dict[str, Any]:
    keep = ("rule", "kind", "state", "value", "threshold", "summary", "fingerprint", "acked_by")
    return {k: alert[k] for k in keep if alert.get(k) is not None}


def with_routing_key(body: str, routing_key: str) -> str:
    """A stored ``pagerduty`` body with ``routing_key`` put in, as posted."""
    return dumps({"routing_key": routing_key, **loads(body)})
