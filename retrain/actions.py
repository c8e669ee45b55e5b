"""The retrain, promote and rollback actions: one code path for the API, the CLI and the dashboard.

    >>> job = request_retrain(store, settings, "credit", mode="retrain", actor="alice")
    >>> promote(store, settings, "credit", "7", actor="alice")
    >>> rollback(store, settings, "credit", actor="alice")
    >>> overview = list_models(store, settings, "credit")

None of these trains in the calling process: a retrain request queues a job that a worker
runs. Promote and rollback talk to MLflow (imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.config import Settings
from monitor.errors import ValidationFailed
from monitor.records import JobRecord, Service
from monitor.store import Store
from retrain.notify import emit
from retrain.records import MODES, TRIGGERS, ModelsOverview, Promotion
from retrain.registry import CANARY, CHAMPION, PREVIOUS, OnChange, Registry, model_name

if TYPE_CHECKING:
    from sqlalchemy import Connection

RETRAIN = "retrain"


def request_retrain(
    store: Store,
    settings: Settings,
    service: str,
    *,
    mode: str | None = None,
    actor: str,
    trigger: str = "manual",
    extra: dict[str, Any] | None = None,
) -> tuple[JobRecord, bool]:
    """Queue a retrain of ``service`` (or return its active one); True when a new job was queued."""
    found = store.get_service(service)
    mode = mode or settings.retrain_policy(found.name).mode
    if mode not in MODES:
        raise ValidationFailed("mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
    if trigger not in TRIGGERS:
        raise ValidationFailed("trigger", f"expected one of {', '.join(TRIGGERS)}, got {trigger!r}")
    params = {"mode": mode, "trigger": trigger, **(extra or {})}
    job, created = store.enqueue_job(RETRAIN, found.name, params, actor)
    if created:
        store.audit(actor, "retrain.request", found.name, {"job_id": job.id, **params})
    return job, created


def get_job(store: Store, job_id: int) -> JobRecord:
    """The job ``job_id`` (NotFound if unknown)."""
    return store.get_job(job_id)


def cancel_job(store: Store, job_id: int, *, actor: str) -> JobRecord:
    """Cancel a queued job, or ask the worker to stop a running one."""
    job = store.cancel_job(job_id)
    store.audit(actor, "job.cancel", str(job.service), {"job_id": job_id})
    return job


def promote(
    store: Store,
    settings: Settings,
    service: str,
    version: str,
    *,
    actor: str,
    reason: str = "manual promotion",
    registry: Registry | None = None,
) -> Promotion:
    """Make ``version`` the champion of ``service`` (the old one becomes ``previous``)."""
    found = store.get_service(service)
    registry = registry or Registry.from_settings(settings, store)
    announce = announcer(store, settings, found, actor, "model.promoted")
    return registry.promote(found, version, actor=actor, reason=reason, on_change=announce)


def rollback(
    store: Store,
    settings: Settings,
    service: str,
    *,
    actor: str,
    reason: str = "manual rollback",
    registry: Registry | None = None,
) -> Promotion:
    """Swap ``champion`` and ``previous`` of ``service``'s model."""
    found = store.get_service(service)
    registry = registry or Registry.from_settings(settings, store)
    announce = announcer(store, settings, found, actor, "model.rolled_back")
    return registry.rollback(found, actor=actor, reason=reason, on_change=announce)


def announcer(store: Store, settings: Settings, service: Service, actor: str, event: str) -> OnChange:
    """A callback that queues the webhook event of an alias change in the change's own transaction."""

    def announce(conn: Connection, done: Promotion) -> None:
        data = {"service": service.name, "model": done.model_name, "version": done.champion, "replaced": done.replaced}
        severity = "warning" if event == "model.rolled_back" else "info"
        emit(store, settings, event, {**data, "actor": actor}, severity=severity, conn=conn)

    return announce


def list_models(
    store: Store, settings: Settings, service: str, *, registry: Registry | None = None, limit: int = 50
) -> ModelsOverview:
    """Versions with aliases and metrics, gate decisions and alias history of ``service``."""
    found = store.get_service(service)
    registry = registry or Registry.from_settings(settings, store)
    model = model_name(found)
    aliases = registry.aliases(model)
    return ModelsOverview(
        service=found.name,
        model_name=model,
        champion=aliases.get(CHAMPION),
        previous=aliases.get(PREVIOUS),
        versions=tuple(registry.versions(model, limit=limit)),
        decisions=tuple(store.list_decisions(found.name, limit=limit)),
        history=tuple(registry.history(found.name, limit=limit)),
        canary=aliases.get(CANARY),
        stage=store.active_stage(found),
    )
