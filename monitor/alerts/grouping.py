"""Grouping: a receiver with ``group_by`` gets one notification per group of alerts, as Alertmanager sends.

    >>> grouper = Grouper(store, settings)
    >>> grouper.add(conn, [(event, hook)], now)       # alert events of grouped receivers join their group
    >>> grouper.flush(conn, now)                      # outbox rows for the groups due now
    [OutboxEntry(event_id='evt_...', receiver='ops', event_type='alert.firing', ...)]

A group is keyed by the receiver and the values of its ``group_by`` labels (an alert without
one of them has it empty). Its timing is Alertmanager's:

- ``group_wait``: a new group waits this long, collecting alerts, before its first notification;
- ``group_interval``: after a notification, a change (an alert added, or resolved) is notified
  this long after the previous notification at the earliest;
- ``repeat_interval``: a group that has not changed is notified again this often while one of
  its alerts fires (replacing the alerts' own reminders for this receiver).

The notification is an ``Event`` of type ``alert.firing`` (an alert of the group fires) or
``alert.resolved`` (all have resolved), whose ``data`` is ``{"alerts": [<the per-alert data an
ungrouped alert event carries>, ...], "group": {"key", "labels"}, "repeat_interval": ...}``;
``monitor.webhooks.presentation.alerts_of`` reads it. A resolved alert is listed once, in the
next notification, then leaves the group; an alert resolved before its group ever told anyone
about it is dropped without a word. At repeat time, alerts that were acknowledged (for formats
that are not re-posted, see ``routing.REPOSTED_WHEN_ACKED``), that are inhibited, or that
resolved while silenced are left out. Groups live in the store and are added to and flushed
in the alert engine's transaction, so a restart neither loses nor repeats a notification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from monitor.store.groups import AlertGroup, GroupMember
from monitor.store.outbox import OutboxEntry
from monitor.webhooks.events import Event, new_event, outbox_entries
from monitor.webhooks.routing import REPOSTED_WHEN_ACKED, severity_rank

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.config import Settings, WebhookConfig
    from monitor.store import Store
    from monitor.store.alerts import AlertRecord

Routed = tuple[Event, "WebhookConfig"]
"""An alert event and one grouped receiver it is routed to."""


def is_grouped(hook: WebhookConfig) -> bool:
    """True for receivers whose alert events are grouped."""
    return bool(hook.group_by)


def group_labels(hook: WebhookConfig, labels: dict[str, str]) -> dict[str, str]:
    """The values of the receiver's ``group_by`` labels in ``labels`` (empty where absent)."""
    return {name: labels.get(name, "") for name in hook.group_by}


def group_key(labels: dict[str, str]) -> str:
    """A stable id of a group's label values (64 hex characters)."""
    text = "\x00".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def next_flush(group: AlertGroup, hook: WebhookConfig, now: float) -> float:
    """When a group that just changed is notified: its first notification stays group_wait after its start."""
    if group.last_notified_at is None:
        return group.next_flush_at
    return min(group.next_flush_at, max(now, group.last_notified_at + hook.group_interval))


class Grouper:
    """Adds alert events to their receivers' groups and turns due groups into outbox rows."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.hooks = {h.name: h for h in settings.webhooks}

    def add(self, conn: Connection, routed: Sequence[Routed], now: float) -> None:
        """Put each event's alert in its group, creating groups and moving their schedule forward."""
        changes = [(e, h) for e, h in routed if e.type != "alert.reminder"]  # the group's repeat re-sends
        if not changes:
            return
        groups = self.store.alert_groups(conn)
        schedule: dict[int, float] = {}
        members: dict[tuple[int, str], GroupMember] = {}
        for event, hook in changes:
            group = self._group_of(conn, groups, event, hook, now)
            at = next_flush(group, hook, now)
            if at != group.next_flush_at:
                groups[(hook.name, group.key)] = replace(group, next_flush_at=at)
                schedule[group.id] = at
            member = _member(group.id, event, now)
            members[(group.id, member.fingerprint)] = member
        self.store.schedule_alert_groups(conn, schedule)
        self.store.put_group_members(conn, list(members.values()))

    def _group_of(
        self, conn: Connection, groups: dict[tuple[str, str], AlertGroup], event: Event, hook: WebhookConfig, now: float
    ) -> AlertGroup:
        labels = group_labels(hook, event.labels)
        key = group_key(labels)
        found = groups.get((hook.name, key))
        if found is None:
            found = self.store.insert_alert_group(conn, hook.name, key, labels, now, now + hook.group_wait)
            groups[(hook.name, key)] = found
        return found

    def flush(self, conn: Connection, now: float) -> list[OutboxEntry]:
        """One notification for each group due at ``now``; the groups' members and schedules updated."""
        due = self.store.due_alert_groups(conn, now)
        if not due:
            return []
        members = self.store.group_members(conn, [g.id for g in due])
        alerts = self.store.alerts_by_id(conn, sorted({m.alert_id for ms in members.values() for m in ms}))
        entries: list[OutboxEntry] = []
        schedule: dict[int, float | None] = {}
        dropped: list[tuple[int, str]] = []
        for group in due:
            hook = self.hooks.get(group.receiver)
            if hook is None or not is_grouped(hook):  # the receiver was removed or no longer groups
                schedule[group.id] = None
                continue
            gone = [m.fingerprint for m in members[group.id] if _ended_unannounced(m, alerts.get(m.alert_id))]
            kept = [m for m in members[group.id] if m.fingerprint not in gone]
            firing = any(m.state == "firing" for m in kept)
            schedule[group.id] = now + hook.repeat_interval if firing else None
            dropped += [(group.id, fp) for fp in gone]
            shown = [m for m in kept if _shown(m, alerts.get(m.alert_id), hook)]
            if shown:
                entries += outbox_entries(self.settings, group_event(group, shown, hook, now), [hook])
        self.store.finish_group_notifications(conn, now, schedule, dropped)
        return entries


def _member(group_id: int, event: Event, now: float) -> GroupMember:
    state = "resolved" if event.type == "alert.resolved" else "firing"
    data = event.data
    return GroupMember(group_id, str(data["fingerprint"]), int(data["id"]), state, False, data, now)


def _ended_unannounced(member: GroupMember, alert: AlertRecord | None) -> bool:
    """A member to drop without a word: it resolved silently (silenced) or before its group ever listed it."""
    if alert is None or (member.state == "firing" and alert.state == "resolved"):
        return True
    return member.state == "resolved" and not member.notified


def _shown(member: GroupMember, alert: AlertRecord | None, hook: WebhookConfig) -> bool:
    """Whether a member is listed: not while inhibited, nor once acknowledged unless the format must re-post it."""
    if member.state == "resolved" or alert is None:
        return True
    if alert.inhibited_by is not None:
        return False
    return alert.acked_at is None or hook.format in REPOSTED_WHEN_ACKED


def group_event(group: AlertGroup, members: Sequence[GroupMember], hook: WebhookConfig, now: float) -> Event:
    """The grouped notification: ``alert.firing`` while one of ``members`` fires, else ``alert.resolved``."""
    firing = any(m.state == "firing" for m in members)
    listed = [_listed(m) for m in members]
    severity = max((str(a.get("severity", "info")) for a in listed), key=severity_rank)
    data: dict[str, Any] = {
        "alerts": listed,
        "group": {"key": group.key, "labels": group.labels},
        "repeat_interval": hook.repeat_interval,
    }
    kind = "alert.firing" if firing else "alert.resolved"
    return new_event(kind, data, severity=severity, labels=dict(group.labels), clock=lambda: now)


def _listed(member: GroupMember) -> dict[str, Any]:
    """A member's alert data, its state as the group last heard it."""
    return {**member.data, "state": member.state}
