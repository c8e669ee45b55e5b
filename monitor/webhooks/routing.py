"""Which receivers an event goes to: by minimum severity, required labels and event types.

Two rules depend on a receiver's format. A ``pagerduty`` receiver without ``events`` gets
``alert.*`` only (a promotion should not open an incident). Reminders of an acknowledged
alert go only to formats in ``REPOSTED_WHEN_ACKED`` (``alertmanager``), which forget a firing
alert unless it is re-posted: people are not reminded, Alertmanager keeps the alert firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.vocabulary import SEVERITIES

if TYPE_CHECKING:
    from monitor.config import WebhookConfig
    from monitor.webhooks.events import Event

DEFAULT_EVENTS = {"pagerduty": ("alert.*",)}
"""The event types a receiver of a format gets when its ``events`` is empty (absent: all)."""
REPOSTED_WHEN_ACKED = frozenset({"alertmanager"})
"""Formats whose receivers resolve a firing alert that is not re-posted, so they get reminders after an ack."""


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in ``SEVERITIES`` (unknown severities rank lowest)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def type_matches(event_type: str, patterns: Sequence[str]) -> bool:
    """True when ``patterns`` is empty (everything) or one is the type, ``prefix.*`` or ``*``."""
    if not patterns:
        return True
    prefix = event_type.split(".")[0]
    return any(p in (event_type, "*", f"{prefix}.*") for p in patterns)


def accepts(hook: WebhookConfig, event: Event) -> bool:
    """True when ``hook`` is routed ``event``."""
    if event.type == "test":
        return True  # a test event checks the pipe, whatever the receiver's filters
    if severity_rank(event.severity) < severity_rank(hook.min_severity):
        return False
    if any(event.labels.get(k) != v for k, v in hook.match_labels.items()):
        return False
    if is_acked_reminder(event) and hook.format not in REPOSTED_WHEN_ACKED:
        return False
    if event.type == "alert.acknowledged" and (hook.format in REPOSTED_WHEN_ACKED or hook.group_by):
        return False  # Alertmanager has no acknowledgement; a grouped receiver's incident is the group's
    return type_matches(event.type, hook.events or DEFAULT_EVENTS.get(hook.format, ()))


def is_acked_reminder(event: Event) -> bool:
    """True for the reminder of an acknowledged alert (a re-post for Alertmanager, not a reminder to people)."""
    return event.type == "alert.reminder" and event.data.get("acked_at") is not None


def receivers_for(hooks: Sequence[WebhookConfig], event: Event) -> list[WebhookConfig]:
    """The receivers ``event`` is routed to, in configuration order."""
    return [h for h in hooks if accepts(h, event)]
