"""What the dashboard's buttons do, through the same functions the API calls (no Streamlit here).

Every action checks the viewer's role first and is recorded under the viewer's name:
the alert and silence functions audit themselves, retrain/promote/rollback go through
``retrain.actions``, rollout stages through ``retrain.stages``, and the test event is
audited here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dashboard.access import Viewer
from monitor.alerts.acknowledge import acknowledge as acknowledge_alert
from monitor.config import Settings
from monitor.errors import AuthError, ValidationFailed
from monitor.roles import may
from monitor.store import Store
from monitor.store.alerts import AlertRecord, SilenceRecord

if TYPE_CHECKING:
    from monitor.records import JobRecord, StageRecord
    from retrain.records import Promotion

SILENCE_LABELS = ("rule", "service", "host", "feature", "kind", "model_version")
"""Labels of an alert a silence made from it may match on."""


def require_operator(viewer: Viewer) -> None:
    """AuthError (403) unless ``viewer`` may act (operator or admin)."""
    if not viewer.can_act:
        raise AuthError(f"{viewer.name} is a {viewer.role}; only operators and admins may do this", status=403)


def acknowledge(store: Store, settings: Settings, viewer: Viewer, alert_id: int, comment: str = "") -> AlertRecord:
    """Acknowledge an open alert: no more reminders, receivers told; audited as the viewer."""
    require_operator(viewer)
    return acknowledge_alert(store, settings, alert_id, viewer.name, time.time(), comment)


def silence_matchers(alert: AlertRecord, keys: tuple[str, ...] = ("rule", "service")) -> dict[str, str]:
    """Matchers that silence ``alert`` (and its siblings sharing those labels)."""
    labels = {"rule": alert.rule, **({"service": alert.service} if alert.service else {}), **alert.labels}
    return {k: str(labels[k]) for k in keys if labels.get(k) is not None}


def silence(
    store: Store,
    viewer: Viewer,
    matchers: dict[str, str],
    ends_at: float,
    comment: str = "",
    *,
    now: float | None = None,
) -> SilenceRecord:
    """Silence alerts matching ``matchers`` from now until ``ends_at``; audited as the viewer."""
    require_operator(viewer)
    now = time.time() if now is None else now
    if not matchers:
        raise ValidationFailed("matchers", "expected at least one label to match, e.g. rule or service")
    if ends_at <= now:
        raise ValidationFailed("ends_at", "expected an end time in the future")
    return store.add_silence(matchers, starts_at=now, ends_at=ends_at, created_by=viewer.name, comment=comment)


def end_silence(store: Store, viewer: Viewer, silence_id: int) -> SilenceRecord:
    """End a silence now; audited as the viewer."""
    require_operator(viewer)
    return store.end_silence(silence_id, viewer.name, time.time())


def send_test_event(store: Store, settings: Settings, viewer: Viewer, receiver: str) -> str:
    """Queue a ``test`` event for one webhook receiver (admins only, as in the API); returns the event id."""
    from monitor.webhooks.events import send_test_event as send

    if not may(viewer.role, "admin"):
        raise AuthError(f"{viewer.name} is a {viewer.role}; only admins may send test events", status=403)
    return send(store, settings, receiver, viewer.name)[0].id


def retrain(store: Store, settings: Settings, viewer: Viewer, service: str, mode: str) -> tuple[JobRecord, bool]:
    """Queue a retrain (or fine-tune) job of ``service``; True when new, False when one was already active."""
    from retrain.actions import request_retrain

    require_operator(viewer)
    return request_retrain(store, settings, service, mode=mode, actor=viewer.name)


def promote(store: Store, settings: Settings, viewer: Viewer, service: str, version: str) -> Promotion:
    """Make ``version`` the champion of ``service``; audited as the viewer."""
    from retrain.actions import promote as promote_version

    require_operator(viewer)
    return promote_version(store, settings, service, version, actor=viewer.name, reason="promoted from the dashboard")


def rollback(store: Store, settings: Settings, viewer: Viewer, service: str) -> Promotion:
    """Swap ``champion`` and ``previous`` of ``service``; audited as the viewer."""
    from retrain.actions import rollback as roll_back

    require_operator(viewer)
    return roll_back(store, settings, service, actor=viewer.name, reason="rolled back from the dashboard")


def start_stage(
    store: Store, settings: Settings, viewer: Viewer, service: str, version: str, stage: str, share: float | None
) -> StageRecord:
    """Put ``version`` of ``service`` in shadow or canary (``share`` of requests); audited as the viewer."""
    from retrain.stages import start_stage as start

    require_operator(viewer)
    return start(store, settings, service, version, stage, actor=viewer.name, share=share)


def abort_stage(store: Store, settings: Settings, viewer: Viewer, service: str, reason: str) -> StageRecord:
    """End the stage ``service`` has in progress as ``aborted``; audited as the viewer."""
    from retrain.stages import end_active

    require_operator(viewer)
    return end_active(store, settings, service, "aborted", reason or "aborted from the dashboard", actor=viewer.name)
