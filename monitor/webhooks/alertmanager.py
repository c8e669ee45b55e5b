"""The ``alertmanager`` format: what Prometheus Alertmanager's ``POST /api/v2/alerts`` takes.

    [{"labels": {"alertname": "credit-drift", "service": "credit", "kind": "drift_share",
                 "severity": "warning"},
      "annotations": {"summary": "50% of features drifted", "description": "...",
                      "dashboard_url": "https://mlwatch.example.com/alerts?service=credit"},
      "startsAt": "2026-11-26T10:00:00Z", "endsAt": "2026-11-26T22:00:00Z",
      "generatorURL": "https://mlwatch.example.com/alerts?service=credit"}]

Labels are the alert's identity in Alertmanager, so they hold only what is stable for one
mlwatch alert: ``alertname`` (the rule), and the alert's labels (kind, severity, service,
feature or segment where the scope has them, the rule's own labels). ``check_id`` and the
fingerprint are annotations. Label names Alertmanager refuses (anything but
``[a-zA-Z_][a-zA-Z0-9_]*``) are rewritten with ``_``, so a rule label such as ``team-name``
arrives as ``team_name`` instead of getting the whole post refused.

Alertmanager resolves an alert by itself once ``endsAt`` passes, so a firing alert is
posted with ``endsAt`` ``HOLD_FACTOR`` repeat intervals ahead (1 h when the repeat interval
is unknown) and mlwatch re-posts it with every ``alert.reminder``: the lifecycle sends one
each ``repeat_interval`` while the alert fires, and for receivers of this format also after
the alert was acknowledged (``monitor.webhooks.routing``), since acknowledging in mlwatch
must not read as "resolved" in Alertmanager. If mlwatch stops, Alertmanager resolves the
alert at most ``HOLD_FACTOR`` repeat intervals later. A silence in mlwatch stops every
notification, re-posts included, so a silenced alert ends in Alertmanager; silence it in
Alertmanager instead when Alertmanager is the receiver. ``alert.resolved`` sets ``endsAt``
to when it cleared.

A grouped notification (a receiver with ``group_by``) posts every alert of the group as an
alert of its own in one POST (Alertmanager groups them again by its own route), each with its
``startsAt``, and ``endsAt`` when it resolved or ``HOLD_FACTOR`` of the group's
``repeat_interval`` ahead: the group is re-posted each ``repeat_interval`` while it fires.

Decision on other events (retrain.*, model.*, test): they are sent, each as an alert named
``mlwatch_event`` with labels ``event_type``, ``severity`` and ``service`` (when there is
one) and ``endsAt`` ``EVENT_HOLD`` (5 min) after it happened, so Alertmanager's routes can
send "retrain failed" to a team like any alert and the ``test`` event checks the pipe; a
receiver that wants alerts only sets ``events: [alert.*]``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from monitor.store.codec import dumps
from monitor.webhooks.presentation import alerts_of, cut, dashboard_link, group_of, headline, rfc3339

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.webhooks.events import Event

HOLD_FACTOR = 3
"""A firing alert's ``endsAt`` is this many repeat intervals ahead: two re-posts may be late or lost."""
DEFAULT_HOLD = 3600.0
EVENT_HOLD = 300.0
EVENT_ALERTNAME = "mlwatch_event"
ANNOTATION_TEXT = 4000  # Alertmanager has no limit; chat integrations downstream do
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_]")
_NOT_IDENTITY = ("rule", "check_id")  # the rule is alertname; a check id is context, not identity


def label_name(name: str) -> str:
    """``name`` as a label name Alertmanager takes: other characters as ``_``, never a leading digit."""
    cleaned = _NOT_IN_NAME.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def render_alertmanager(event: Event, settings: Settings) -> str:
    """The body of ``event`` for ``POST /api/v2/alerts``: a list of one alert, or of every alert of a group."""
    if not event.type.startswith("alert."):
        alerts = [_event_alert(event)]
    elif group_of(event) is not None:
        alerts = [_alert(event, a, {str(k): str(v) for k, v in a.get("labels", {}).items()}) for a in alerts_of(event)]
    else:
        alerts = [_alert(event, event.data, event.labels)]
    link = dashboard_link(settings, event)
    for alert in alerts if link is not None else ():
        alert["annotations"]["dashboard_url"] = link
        alert["generatorURL"] = link
    return dumps(alerts)


def _alert(event: Event, data: dict[str, Any], own: dict[str, str]) -> dict[str, Any]:
    """One mlwatch alert (``data``, with labels ``own``) as an Alertmanager alert."""
    labels = {label_name(k): str(v) for k, v in own.items() if k not in _NOT_IDENTITY}
    labels["alertname"] = str(data.get("rule") or own.get("rule") or EVENT_ALERTNAME)
    annotations = {
        "summary": cut(str(data.get("summary") or headline(event)), ANNOTATION_TEXT),
        "description": cut(_description(data), ANNOTATION_TEXT),
        "mlwatch_fingerprint": str(data.get("fingerprint", "")),
    }
    if "check_id" in own:
        annotations["check_id"] = own["check_id"]
    starts = data.get("fired_at") or data.get("started_at") or event.occurred_at
    ends = _ends(event, data)
    return {"labels": labels, "annotations": annotations, "startsAt": rfc3339(starts), "endsAt": rfc3339(ends)}


def _ends(event: Event, data: dict[str, Any]) -> float:
    """When Alertmanager should consider an alert over: when it cleared, or a bounded time ahead.

    A group's alerts are held for the group's ``repeat_interval`` (the event's), at which it is re-posted.
    """
    resolved = data.get("state") == "resolved" if group_of(event) is not None else event.type == "alert.resolved"
    if resolved:
        return float(data.get("resolved_at") or event.occurred_at)
    repeat = event.data.get("repeat_interval")
    hold = HOLD_FACTOR * float(repeat) if isinstance(repeat, int | float) and repeat > 0 else DEFAULT_HOLD
    return event.occurred_at + hold


def _description(data: dict[str, Any]) -> str:
    parts = [f"{data.get('kind', 'alert')} on {data.get('service') or 'mlwatch'}"]
    if data.get("value") is not None:
        parts.append(f"value {data['value']:g}" if isinstance(data["value"], float) else f"value {data['value']}")
    if data.get("threshold") is not None:
        parts.append(f"threshold {data['threshold']}")
    if data.get("acked_by"):
        parts.append(f"acknowledged by {data['acked_by']}")
    return ", ".join(parts)


def _event_alert(event: Event) -> dict[str, Any]:
    labels = {"alertname": EVENT_ALERTNAME, "event_type": event.type, "severity": event.severity}
    service = event.data.get("service") or event.labels.get("service")
    if service:
        labels["service"] = str(service)
    annotations = {
        "summary": cut(headline(event), ANNOTATION_TEXT),
        "description": cut(dumps(event.data), ANNOTATION_TEXT),
        "event_id": event.id,
    }
    ends = event.occurred_at + EVENT_HOLD
    return {
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(event.occurred_at),
        "endsAt": rfc3339(ends),
    }
