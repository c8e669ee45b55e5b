"""The alert lifecycle as a pure function: given what a rule sees now and the active alert, what changes.

    (none) --breach--> pending --breach held for `for`--> firing --clear--> resolved
       \\____ breach with `for: 0` ___________________/        \\-- every repeat_interval: reminder

Notifications: one ``alert.firing`` when an alert fires (or when its silence ends while it
still fires), ``alert.reminder`` every ``repeat_interval``, and one ``alert.resolved`` when
it clears, if its firing was notified. The reminder of an acknowledged alert is routed only
to receivers that expire firing alerts unless re-posted (Alertmanager; see
``monitor.webhooks.routing``), so people are not reminded after an ack. Nothing is sent while a
silence matches; an alert that clears while still pending is resolved without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.alerts.observations import Observation

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig
    from monitor.store.alerts import AlertRecord


@dataclass(frozen=True, slots=True)
class Change:
    """What to write for one alert: new or changed columns, the event to send and the audit action."""

    values: dict[str, Any]
    event: str | None = None  # alert.firing, alert.resolved, alert.reminder
    audit: str | None = None
    insert: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def alert_labels(rule: AlertRuleConfig, scope: dict[str, str]) -> dict[str, str]:
    """Labels silences and receivers match on: rule, kind, severity, the scope, then the rule's own labels."""
    return {"rule": rule.name, "kind": rule.kind, "severity": rule.severity, **scope, **rule.labels}


def decide(
    rule: AlertRuleConfig, obs: Observation, current: AlertRecord | None, now: float, *, silenced: bool
) -> Change | None:
    """The change one observation makes to the active alert of its fingerprint (None: nothing to write)."""
    if current is None:
        return _start(rule, obs, now, silenced) if obs.breached else None
    if not obs.breached:
        return resolve(current, now, silenced=silenced, summary=obs.summary, value=obs.value)
    if current.state == "pending":
        return _pending(rule, obs, current, now, silenced)
    return _firing(rule, obs, current, now, silenced)


def _start(rule: AlertRuleConfig, obs: Observation, now: float, silenced: bool) -> Change:
    values: dict[str, Any] = {
        "rule": rule.name,
        "kind": rule.kind,
        "service": obs.scope.get("service"),
        "state": "pending",
        "severity": rule.severity,
        "labels": {**alert_labels(rule, obs.scope), **_origin(obs)},
        "value": obs.value,
        "threshold": rule.threshold,
        "summary": obs.summary,
        "started_at": now,
    }
    if rule.for_ > 0:
        return Change(values, insert=True, details=obs.details)
    fired = _fire(values, now, silenced)
    return Change(fired.values, fired.event, fired.audit, insert=True, details=obs.details)


def _origin(obs: Observation) -> dict[str, str]:
    """``check_id`` of the check that started an alert, kept with its labels so its report can be found."""
    check_id = obs.details.get("check_id")
    return {"check_id": str(check_id)} if check_id is not None else {}


def _fire(values: dict[str, Any], now: float, silenced: bool) -> Change:
    values = {**values, "state": "firing", "fired_at": now}
    if silenced:
        return Change(values, audit="alert.firing")
    return Change({**values, "last_notified_at": now}, "alert.firing", "alert.firing")


def _pending(
    rule: AlertRuleConfig, obs: Observation, current: AlertRecord, now: float, silenced: bool
) -> Change | None:
    seen = {"value": obs.value, "summary": obs.summary}
    if now - current.started_at >= rule.for_:
        return _fire(seen, now, silenced)
    return _refresh(current, seen)


def _firing(rule: AlertRuleConfig, obs: Observation, current: AlertRecord, now: float, silenced: bool) -> Change | None:
    seen = {"value": obs.value, "summary": obs.summary}
    if silenced:
        return _refresh(current, seen)
    if current.last_notified_at is None:  # fired while silenced; the silence is over
        return Change({**seen, "last_notified_at": now}, "alert.firing")
    due = rule.repeat_interval > 0 and now - current.last_notified_at >= rule.repeat_interval
    if due:  # once acknowledged, routing sends it only to receivers that must see it re-posted (Alertmanager)
        return Change({**seen, "last_notified_at": now}, "alert.reminder")
    return _refresh(current, seen)


def _refresh(current: AlertRecord, seen: dict[str, Any]) -> Change | None:
    """Keep the latest value and summary, writing only when they changed."""
    if current.value == seen["value"] and current.summary == seen["summary"]:
        return None
    return Change(seen)


def resolve(
    current: AlertRecord, now: float, *, silenced: bool, summary: str | None = None, value: float | None = None
) -> Change:
    """Resolve ``current``; notify only when its firing was notified and no silence matches."""
    values: dict[str, Any] = {"state": "resolved", "resolved_at": now, "summary": summary or current.summary}
    if value is not None:
        values["value"] = value
    notify = current.state == "firing" and current.last_notified_at is not None and not silenced
    audit = "alert.resolved" if current.state == "firing" else None
    return Change(values, "alert.resolved" if notify else None, audit)
