"""Which receivers an event goes to: by minimum severity, required labels and event types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.config import WebhookConfig
    from monitor.webhooks.events import Event

SEVERITIES = ("info", "warning", "critical")
"""Severities from least to most urgent."""


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
    return type_matches(event.type, hook.events)


def receivers_for(hooks: Sequence[WebhookConfig], event: Event) -> list[WebhookConfig]:
    """The receivers ``event`` is routed to, in configuration order."""
    return [h for h in hooks if accepts(h, event)]
