"""Body formats, keyed by the ``format`` a receiver is configured with.

``json`` is mlwatch's own documented, versioned envelope (``schema: mlwatch.event/v1``)::

    {
      "schema": "mlwatch.event/v1",
      "id": "evt_5c0e...",                  # also the webhook-id header; same on retries
      "type": "alert.firing",               # see monitor.webhooks.events.EVENT_TYPES
      "timestamp": "2026-11-26T10:00:00Z",  # when it happened (UTC, RFC 3339)
      "severity": "warning",                # info, warning, critical
      "labels": {"service": "credit"},
      "dashboard_url": "http://127.0.0.1:8501/alerts?service=credit",
      "data": {...}                          # per type; alert events carry the alert
    }

Fields are only ever added within v1; a breaking change gets ``mlwatch.event/v2``.
``slack`` is the incoming-webhook form: ``text`` plus ``blocks`` with a link button.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from monitor.store.codec import dumps

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.webhooks.events import Event

SCHEMA = "mlwatch.event/v1"
_PAGES = {"alert": "alerts", "retrain": "models", "model": "models", "test": ""}  # dashboard url_paths
_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def dashboard_link(settings: Settings, event: Event) -> str:
    """The dashboard page about ``event`` (alerts or models), filtered to its service."""
    page = _PAGES.get(event.type.split(".")[0], "")
    service = event.data.get("service") or event.labels.get("service")
    query = f"?{urlencode({'service': service})}" if service else ""
    return f"{settings.dashboard_url.rstrip('/')}/{page}{query}"


def envelope(event: Event, settings: Settings) -> dict[str, Any]:
    """The ``mlwatch.event/v1`` document of ``event``."""
    return {
        "schema": SCHEMA,
        "id": event.id,
        "type": event.type,
        "timestamp": datetime.fromtimestamp(event.occurred_at, UTC).isoformat().replace("+00:00", "Z"),
        "severity": event.severity,
        "labels": event.labels,
        "dashboard_url": dashboard_link(settings, event),
        "data": event.data,
    }


def headline(event: Event) -> str:
    """A one-line human summary: the alert's summary, else the type and service."""
    summary = event.data.get("summary")
    if event.type.startswith("alert.") and summary:
        state = event.type.removeprefix("alert.").upper()
        return f"[{state}] {event.data.get('rule', '')}: {summary}"
    service = event.data.get("service")
    return f"{event.type}" + (f" ({service})" if service else "")


def render_json(event: Event, settings: Settings) -> str:
    """The generic JSON body."""
    return dumps(envelope(event, settings))


def render_slack(event: Event, settings: Settings) -> str:
    """A Slack incoming-webhook body: fallback ``text`` and a section with a dashboard button."""
    text = f"{_ICONS.get(event.severity, '')} {headline(event)}".strip()
    link = dashboard_link(settings, event)
    fields = [{"type": "mrkdwn", "text": f"*{k}*: {v}"} for k, v in sorted(event.labels.items())][:10]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"}, "url": link}],
        }
    )
    return dumps({"text": f"{text} <{link}|dashboard>", "blocks": blocks})


FORMATS: dict[str, Callable[[Event, Settings], str]] = {"json": render_json, "slack": render_slack}
"""Body renderers by format name (the value of a receiver's ``format``)."""


def render(format_name: str, event: Event, settings: Settings) -> str:
    """The body of ``event`` for a receiver using ``format_name``."""
    try:
        renderer = FORMATS[format_name]
    except KeyError:
        raise ValueError(f"unknown webhook format {format_name!r}; expected one of {', '.join(FORMATS)}") from None
    return renderer(event, settings)
