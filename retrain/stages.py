"""Rollout stages of a challenger: start a shadow, end or abort it, see it, and the policy that
ends it (enough labelled rows, too long, a crash) and promotes a shadow that proved better.

One code path for the API, the CLI, ``mlwatch serve`` (which ends a shadow that crashed) and
the worker (which applies ``RetrainConfig.shadow`` each cycle).

    >>> stage = start_stage(store, settings, "credit", "7", "shadow", actor="alice")
    >>> view = stages_view(store, settings, "credit")      # with the live comparison
    >>> end_active(store, settings, "credit", "aborted", "wrong data", actor="alice")

A shadow never answers requests: ``mlwatch serve`` scores it beside the champion, off the
request path, and keeps its predictions in ``shadow_predictions``, one row per request with
the champion's answer beside it (``monitor.store.stages``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from monitor.config import RESERVED_STAGES, STAGES, Settings
from monitor.errors import Conflict, ValidationFailed
from monitor.records import Service, StageRecord
from monitor.store import Store
from retrain.comparison import Comparison, compare
from retrain.notify import emit
from retrain.registry import Registry, check_version, model_name

SHADOW = "shadow"
STARTED, ENDED = "model.shadow_started", "model.shadow_ended"


@dataclass(frozen=True, slots=True)
class StageView:
    """A stage as the API shows it: the record, and the comparison of its rows so far."""

    stage: StageRecord
    comparison: Comparison | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the API."""
        return {**asdict(self.stage), "comparison": None if self.comparison is None else self.comparison.as_dict()}


def check_stage(stage: object) -> str:
    """``stage`` when it names a stage that can be started; ValidationFailed naming ``stage`` otherwise."""
    if stage in RESERVED_STAGES:
        raise ValidationFailed("stage", f"the {stage!r} stage is not available yet; available: {', '.join(STAGES)}")
    if stage not in STAGES:
        shown = repr(stage)[:60]
        raise ValidationFailed("stage", f"unknown stage {shown}; expected one of {', '.join(STAGES)}")
    return str(stage)


def start_stage(
    store: Store,
    settings: Settings,
    service: str,
    version: str,
    stage: str,
    *,
    actor: str,
    registry: Registry | None = None,
) -> StageRecord:
    """Put ``version`` in ``stage`` beside the champion (refused: no champion, the champion
    itself, an unknown version, an input signature other than the champion's)."""
    stage = check_stage(stage)
    version = check_version(version)
    found = store.get_service(service)
    registry = registry or Registry.from_settings(settings, store)
    champion = _checked_challenger(registry, settings, found, version)
    started = store.start_stage(found, stage, version, champion=champion, actor=actor)
    store.audit(actor, "stage.start", found.name, {"stage": stage, "version": version, "champion": champion})
    emit(store, settings, STARTED, _event(found, started, actor))
    return started


def _checked_challenger(registry: Registry, settings: Settings, service: Service, version: str) -> str:
    """The champion's version, once ``version`` is found fit to run beside it."""
    model = model_name(service)
    champion = registry.champion(model)
    if champion is None:
        raise Conflict(f"model {model!r} has no champion to run a shadow beside; promote a version first")
    if champion == version:
        raise ValidationFailed("version", f"version {version} is the champion; a shadow must be another version")
    registry.version(model, version)  # NotFound names the model and version
    theirs = registry.input_signature(model, version, settings.mlflow_tracking_uri)
    ours = registry.input_signature(model, champion, settings.mlflow_tracking_uri)
    if theirs != ours:
        differences = _differences(ours, theirs)
        raise ValidationFailed(
            "version", f"version {version}'s input signature differs from champion {champion}'s: {differences}"
        )
    return champion


def _differences(ours: tuple[tuple[str, str], ...] | None, theirs: tuple[tuple[str, str], ...] | None) -> str:
    """What differs between two input signatures, in a few words."""
    if ours is None or theirs is None:
        return f"{'the champion' if ours is None else 'the challenger'} has no signature"
    mine, other = dict(ours), dict(theirs)
    parts = []
    if missing := sorted(set(mine) - set(other)):
        parts.append(f"lacks {', '.join(missing)}")
    if extra := sorted(set(other) - set(mine)):
        parts.append(f"adds {', '.join(extra)}")
    if typed := sorted(c for c in set(mine) & set(other) if mine[c] != other[c]):
        parts.append("types differ for " + ", ".join(f"{c} ({mine[c]} vs {other[c]})" for c in typed))
    return "; ".join(parts) or "columns in another order"


def end_active(
    store: Store,
    settings: Settings,
    service: str,
    status: str,
    reason: str,
    *,
    actor: str,
    details: dict[str, Any] | None = None,
) -> StageRecord:
    """End the service's active stage; Conflict when none is active."""
    found = store.get_service(service)
    active = store.active_stage(found)
    if active is None:
        raise Conflict(f"service {found.name!r} has no stage in progress")
    return end_stage(store, settings, found, active, status, reason, actor=actor, details=details)


def end_stage(
    store: Store,
    settings: Settings,
    service: Service,
    stage: StageRecord,
    status: str,
    reason: str,
    *,
    actor: str,
    details: dict[str, Any] | None = None,
) -> StageRecord:
    """End ``stage`` (once: a second ending changes nothing) and announce it."""
    if details is None:
        details = {"comparison": comparison_of(store, settings, service, stage).as_dict()}
    ended, changed = store.end_stage(service, stage.id, status, reason, details=details)
    if changed:
        store.audit(actor, "stage.end", service.name, {"stage_id": stage.id, "status": status, "reason": reason})
        severity = "warning" if status in ("crashed", "failed") else "info"
        emit(store, settings, ENDED, {**_event(service, ended, actor), **details}, severity=severity)
    return ended


def record_crash(store: Store, settings: Settings, service: Service, stage: StageRecord, error: str) -> StageRecord:
    """Count a crash of the shadow and end its stage with the error as the reason."""
    crashes = store.count_stage_crash(service, stage.id)
    reason = f"the shadow version {stage.version} crashed ({crashes} crash(es)): {error}"[:2000]
    return end_stage(store, settings, service, stage, "crashed", reason, actor="mlwatch serve", details={})


def comparison_of(store: Store, settings: Settings, service: Service, stage: StageRecord) -> Comparison:
    """Champion and shadow of ``stage`` compared on the rows the shadow scored."""
    gate = settings.retrain_policy(service.name).gate
    return compare(store.shadow_pairs(service, stage.id), service.task, gate)


def stages_view(store: Store, settings: Settings, service: str, *, limit: int = 20) -> list[StageView]:
    """The service's stages, newest first; the active one with its live comparison."""
    found = store.get_service(service)
    return [
        StageView(s, comparison_of(store, settings, found, s) if s.active else None)
        for s in store.list_stages(found, limit=limit)
    ]


def _event(service: Service, stage: StageRecord, actor: str) -> dict[str, Any]:
    return {
        "service": service.name,
        "model": model_name(service),
        "stage": stage.stage,
        "stage_id": stage.id,
        "version": stage.version,
        "champion_version": stage.champion_version,
        "status": stage.status,
        "reason": stage.reason,
        "actor": actor,
    }


def review(
    store: Store, settings: Settings, service: Service, *, registry: Registry | None = None, now: float | None = None
) -> StageRecord | None:
    """Apply the shadow policy to the service's active shadow; the stage if this call ended it.

    Ends it ``passed`` (and promotes it under ``auto_promote``) once ``shadow.min_labelled``
    of its rows have labels and the gate, with its significance rule, finds it better on
    them; ``failed`` when the gate does not; ``expired`` after ``shadow.max_duration``
    without that many labels.
    """
    stage = store.active_stage(service)
    if stage is None or stage.stage != SHADOW:
        return None
    policy = settings.retrain_policy(service.name)
    comparison = comparison_of(store, settings, service, stage)
    details = {"comparison": comparison.as_dict()}
    when = time.time() if now is None else now
    if comparison.labelled >= policy.shadow.min_labelled and comparison.verdict is not None:
        verdict = comparison.verdict
        status = "passed" if verdict.passed else "failed"
        reason = f"{'better' if verdict.passed else 'not better'} on {comparison.labelled} live labelled rows: "
        ended = end_stage(
            store, settings, service, stage, status, reason + verdict.reason, actor="mlwatch", details=details
        )
        if verdict.passed and policy.auto_promote:
            _promote(store, settings, service, stage, verdict.reason, registry)
        return ended
    if when - stage.started_at >= policy.shadow.max_duration:
        reason = (
            f"{comparison.labelled} of the {policy.shadow.min_labelled} labelled rows needed after "
            f"{policy.shadow.max_duration:.0f}s in shadow"
        )
        return end_stage(store, settings, service, stage, "expired", reason, actor="mlwatch", details=details)
    return None


def _promote(
    store: Store, settings: Settings, service: Service, stage: StageRecord, reason: str, registry: Registry | None
) -> None:
    from retrain.actions import promote

    actor = f"shadow:{stage.id}"
    promote(store, settings, service.name, stage.version, actor=actor, reason=f"shadow: {reason}", registry=registry)
