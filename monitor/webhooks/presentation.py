"""What every body format shows of an event: its headline, its dashboard page and its time.

Kept apart from ``formats.py`` (the registry) so that each format module can use it
without importing the registry that imports them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.webhooks.events import Event

_PAGES = {"alert": "alerts", "retrain": "models", "model": "models", "test": ""}  # dashboard url_paths
_ELLIPSIS = "\u2026"


def dashboard_link(settings: Settings, event: Event) -> str | None:
    """The dashboard page about ``event`` (alerts or models), filtered to its service; None without a dashboard_url."""
    if not settings.dashboard_url:
        return None
    page = _PAGES.get(event.type.split(".")[0], "")
    service = event.data.get("service") or event.labels.get("service")
    query = f"?{urlencode({'service': service})}" if service else ""
    return f"{settings.dashboard_url.rstrip('/')}/{page}{query}"


def alerts_of(event: Event) -> list[dict[str, Any]]:
    """The alerts an alert event is about: the list of a grouped notification, else the event's own data."""
    listed = event.data.get("alerts")
    return list(listed) if isinstance(listed, list) else [event.data]


def group_of(event: Event) -> dict[str, Any] | None:
    """``{"key", "labels"}`` of a grouped notification; None for an event about one alert (or none)."""
    group = event.data.get("group")
    return group if isinstance(group, dict) and isinstance(event.data.get("alerts"), list) else None


def alert_line(alert: dict[str, Any]) -> str:
    """One alert of a list on one line: ``[firing] credit-drift: 50% of features drifted``."""
    return f"[{alert.get('state', 'firing')}] {alert.get('rule', '')}: {alert.get('summary', '')}"


def headline(event: Event) -> str:
    """A one-line human summary: the alert's summary, a group's size and labels, else the type and service."""
    group = group_of(event)
    if group is not None:
        return _group_headline(event, group)
    summary = event.data.get("summary")
    if event.type.startswith("alert.") and summary:
        state = event.type.removeprefix("alert.").upper()
        return f"[{state}] {event.data.get('rule', '')}: {summary}"
    service = event.data.get("service")
    return f"{event.type}" + (f" ({service})" if service else "")


def _group_headline(event: Event, group: dict[str, Any]) -> str:
    listed = alerts_of(event)
    state = event.type.removeprefix("alert.").upper()
    where = ", ".join(f"{k}={v}" for k, v in group.get("labels", {}).items()) or "alerts"
    if len(listed) == 1:
        return f"[{state}:1] {where}: {listed[0].get('rule', '')}: {listed[0].get('summary', '')}"
    firing = sum(1 for a in listed if a.get("state") == "firing")
    counts = f"{firing} firing" + (f", {len(listed) - firing} resolved" if firing < len(listed) else "")
    return f"[{state}:{len(listed)}] {where}: {counts}"


def rfc3339(epoch: float) -> str:
    """``epoch`` seconds as UTC RFC 3339 with a ``Z`` (``2026-11-26T10:00:00Z``, microseconds when present)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last one an ellipsis when anything was dropped."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS
