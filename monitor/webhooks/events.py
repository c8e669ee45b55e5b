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
from monitor.vocabulary import SEVERITIES
from monitor.webhooks.formats import render
from monitor.webhooks.routing import receivers_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.config import Settings, WebhookConfig
    from monitor.store import Store

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


def send_test_event(store: Store, settings: Settings, receiver: str | None, actor: str) -> tuple[Event, list[str]]:
    """Queue a ``test`` event for the receiver named ``receiver`` (None: all of them), audited
    as ``actor``; the event and the receivers it went to. The API's ``POST /v1/webhooks/test``
    and the dashboard's button both call this (each checks first that the caller is an admin).

    Conflict when no receiver is configured, NotFound for a name that is not one of them.
    """
    from monitor.errors import Conflict, NotFound
    from monitor.store.alerts import write_audit

    if not settings.webhooks:
        raise Conflict("no webhook receivers are configured; add one under `webhooks:` in mlwatch.yaml")
    hooks = [h for h in settings.webhooks if receiver is None or h.name == receiver]
    if not hooks:
        known = ", ".join(h.name for h in settings.webhooks)
        raise NotFound(f"unknown webhook receiver {receiver!r} (configured: {known})")
    event = new_event("test", {"message": "test event from mlwatch", "requested_by": actor})
    names = [h.name for h in hooks]
    with store.write_transaction() as conn:
        enqueue(store, settings, event, hooks, conn)
        write_audit(conn, actor, "webhook.test", event.id, {"receivers": names})
    return event, names
