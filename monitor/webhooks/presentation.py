"""What every body format shows of an event: its headline, its dashboard page and its time.

Kept apart from ``formats.py`` (the registry) so that each format module can use it
without importing the registry that imports them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
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


def headline(event: Event) -> str:
    """A one-line human summary: the alert's summary, else the type and service."""
    summary = event.data.get("summary")
    if event.type.startswith("alert.") and summary:
        state = event.type.removeprefix("alert.").upper()
        return f"[{state}] {event.data.get('rule', '')}: {summary}"
    service = event.data.get("service")
    return f"{event.type}" + (f" ({service})" if service else "")


def rfc3339(epoch: float) -> str:
    """``epoch`` seconds as UTC RFC 3339 with a ``Z`` (``2026-11-26T10:00:00Z``, microseconds when present)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last one an ellipsis when anything was dropped."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS
