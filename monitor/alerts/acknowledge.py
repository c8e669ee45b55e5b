"""Acknowledging an alert: the one use case behind ``POST /v1/alerts/{id}/ack`` and the dashboard's button.

The acknowledgement, its audit entry and an ``alert.acknowledged`` event for the receivers
that take it are written in one transaction, so a receiver hears of exactly the
acknowledgements that happened. PagerDuty acknowledges the incident of the alert's
``dedup_key``; json, slack, msteams and email receivers get a message saying who acknowledged
it. Alertmanager (which has no acknowledgement; mlwatch keeps re-posting the firing alert) and
receivers with ``group_by`` (whose incident is the group's, not one alert's) get none.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from monitor.webhooks.events import enqueue, new_event
from monitor.webhooks.routing import receivers_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.config import Settings
    from monitor.store import Store
    from monitor.store.alerts import AlertRecord

EVENT = "alert.acknowledged"


def acknowledge(
    store: Store, settings: Settings, alert_id: int, actor: str, now: float, comment: str = ""
) -> AlertRecord:
    """Acknowledge an open alert (no more reminders to people) and announce it; Conflict if resolved."""

    def announce(conn: Connection, alert: AlertRecord) -> None:
        data = {**asdict(alert), "comment": comment}
        labels = {k: str(v) for k, v in alert.labels.items()}
        event = new_event(EVENT, data, severity=alert.severity, labels=labels, clock=lambda: now)
        enqueue(store, settings, event, receivers_for(settings.webhooks, event), conn)

    return store.ack_alert(alert_id, actor, now, comment, announce=announce)
