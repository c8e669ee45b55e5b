"""Events and ``emit``: the one way anything in mlwatch notifies webhook receivers.

    >>> emit(store, settings, "model.promoted", {"service": "credit", "version": "7"})
    ['evt_2f1c...']

An event is routed to the receivers whose severity, labels and event types match, then
written to the outbox, one row per receiver, each holding the exact body to post. When
``conn`` is given the rows join that transaction, so the event exists exactly when the
change it announces does.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.errors import ValidationFailed
from monitor.store.outbox import OutboxEntry
from monitor.webhooks.formats import render
from monitor.webhooks.routing import SEVERITIES, receivers_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.config import Settings, WebhookConfig
    from monitor.store import Store

EVENT_TYPES = (
    "alert.firing",
    "alert.resolved",
    "alert.reminder",
    "test",
    "retrain.started",
    "retrain.finished",
    "retrain.failed",
    "model.promoted",
    "model.rolled_back",
    "model.alias_changed_externally",
)
"""Every event type mlwatch sends; receivers may subscribe to them or to ``prefix.*``."""
_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$")


@dataclass(frozen=True, slots=True)
class Event:
    """Something receivers are told about."""

    id: str
    type: str
    occurred_at: float
    severity: str = "info"
    labels: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def new_event(
    event_type: str,
    data: dict[str, Any],
    *,
    severity: str = "info",
    labels: dict[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Event:
    """An event with a fresh id (the ``webhook-id`` every retry repeats)."""
    if not _TYPE.match(event_type):
        raise ValidationFailed(
            "event_type", f"expected dotted lower-case words such as 'retrain.started', got {event_type!r}"
        )
    if severity not in SEVERITIES:
        raise ValidationFailed("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    return Event(f"evt_{uuid.uuid4().hex}", event_type, clock(), severity, dict(labels or {}), data)


def outbox_entries(settings: Settings, event: Event, receivers: list[WebhookConfig]) -> list[OutboxEntry]:
    """One outbox row per receiver, with the body rendered in that receiver's format."""
    return [
        OutboxEntry(event.id, hook.name, event.type, render(hook.format, event, settings), event.occurred_at)
        for hook in receivers
    ]


def enqueue(
    store: Store, settings: Settings, event: Event, receivers: list[WebhookConfig], conn: Connection | None = None
) -> list[str]:
    """Write ``event`` for ``receivers``; returns ``[event.id]``, or ``[]`` when there were none."""
    if not receivers:
        return []
    store.enqueue_deliveries(outbox_entries(settings, event, receivers), conn=conn)
    return [event.id]


def emit(
    store: Store,
    settings: Settings,
    event_type: str,
    data: dict[str, Any],
    *,
    severity: str = "info",
    labels: dict[str, str] | None = None,
    conn: Connection | None = None,
) -> list[str]:
    """Route an event to the matching receivers and write it to the outbox; returns its id (or [] if unrouted)."""
    event = new_event(event_type, data, severity=severity, labels=labels)
    return enqueue(store, settings, event, receivers_for(settings.webhooks, event), conn)


def check_event_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``patterns`` if each is a known event type or ``prefix.*``; raise ValueError otherwise."""
    prefixes = {t.split(".")[0] for t in EVENT_TYPES}
    for pattern in patterns:
        known = pattern in EVENT_TYPES or (pattern.endswith(".*") and pattern[:-2] in prefixes) or pattern == "*"
        if not known:
            raise ValueError(
                f"unknown event type {pattern!r}; expected one of {', '.join(EVENT_TYPES)} "
                "or a prefix such as 'alert.*'"
            )
    return patterns
