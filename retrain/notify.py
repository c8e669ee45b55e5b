"""Lifecycle events of retraining sent through mlwatch's webhooks (``monitor.webhooks.events``).

Events: ``retrain.started``, ``retrain.finished``, ``retrain.failed``, ``model.promoted``,
``model.rolled_back``, ``model.alias_changed_externally`` (an alias moved in MLflow's UI or
API, not through mlwatch: data ``alias``, ``from``, ``to``, ``champion`` and ``previous``
after it, ``source: external``), ``model.shadow_started`` and ``model.shadow_ended`` (a
challenger's shadow stage: data ``version``, ``champion_version``, ``stage_id``, and when
ended its ``status``, ``reason`` and the comparison it ended on), ``model.canary_started``,
``model.canary_ended`` and ``model.canary_rolled_back`` (the same data, with the canary's
``share`` and, once ended, the ``health`` it was judged on). Where the webhooks package
is not installed the event is logged instead; a failing notification never fails the retrain or
promotion that caused it.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from monitor.config import Settings
from monitor.store import Store

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("mlwatch.retrain")

EXTERNAL_EVENT = "model.alias_changed_externally"
EVENTS = (
    "retrain.started",
    "retrain.finished",
    "retrain.failed",
    "model.promoted",
    "model.rolled_back",
    EXTERNAL_EVENT,
    "model.shadow_started",
    "model.shadow_ended",
    "model.canary_started",
    "model.canary_ended",
    "model.canary_rolled_back",
)


def emit(
    store: Store,
    settings: Settings,
    event_type: str,
    data: dict[str, Any],
    *,
    severity: str = "info",
    conn: Connection | None = None,
) -> list[str]:
    """Queue ``event_type`` for every matching webhook; returns the event ids (none when not sent)."""
    try:
        events = importlib.import_module("monitor.webhooks.events")
    except ImportError:
        log.info("event %s (webhooks not available): %s", event_type, data)
        return []
    labels = {"service": str(data.get("service", ""))}
    try:
        return list(events.emit(store, settings, event_type, data, severity=severity, labels=labels, conn=conn))
    except Exception:  # notifications are best effort; the action itself already happened
        log.exception("could not queue webhook event %s", event_type)
        return []
