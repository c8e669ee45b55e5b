"""Rollout stages of a challenger: start a shadow or a canary, end or abort it, see it, and the
policy that ends it and promotes a challenger that proved itself.

One code path for the API, the CLI, the dashboard, ``mlwatch serve`` (which ends a stage
whose version crashed or cannot load) and the worker (which applies ``RetrainConfig.shadow``
and ``RetrainConfig.canary`` each cycle, in ``review``).

    >>> stage = start_stage(store, settings, "credit", "7", "shadow", actor="alice")
    >>> view = stages_view(store, settings, "credit")      # with the live comparison
    >>> end_active(store, settings, "credit", "aborted", "wrong data", actor="alice")

A shadow never answers requests: ``mlwatch serve`` scores it beside the champion, off the
request path, and keeps its predictions in ``shadow_predictions``, one row per request with
the champion's answer beside it (``monitor.store.stages``). It ends ``passed`` once better on
enough live labelled rows, ``failed``, ``expired`` or ``crashed``.

A canary answers ``share`` of the requests (``retrain.canary``), with the MLflow alias
``canary`` on its version while it runs. It ends ``rolled_back`` the first time a guard is
breached (event ``model.canary_rolled_back``, audited with the numbers), ``passed`` and
promoted once it held for ``duration``, ``expired`` when it served too few requests in that
time to be judged. Under ``stages: [shadow, canary]`` a shadow that passed starts the canary.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from monitor.config import STAGES, Settings
from monitor.errors import Conflict, MlwatchError, ValidationFailed
from monitor.records import Service, StageRecord
from monitor.store import Store
from retrain import canary
from retrain.comparison import Comparison, compare
from retrain.notify import emit
from retrain.registry import CANARY, Registry, check_version, model_name

log = logging.getLogger("mlwatch.retrain")
SHADOW = "shadow"
ROLLED_BACK = "model.canary_rolled_back"


def started_event(stage: str) -> str:
    """The event announcing that a ``stage`` started: ``model.shadow_started``, ``model.canary_started``."""
    return f"model.{stage}_started"


def ended_event(stage: str, status: str) -> str:
    """The event announcing how a ``stage`` ended: ``model.<stage>_ended``, or
    ``model.canary_rolled_back`` for a canary rolled back by its guards."""
    return ROLLED_BACK if status == "rolled_back" else f"model.{stage}_ended"


@dataclass(frozen=True, slots=True)
class StageView:
    """A stage as the API shows it: the record, and how its challenger does so far (a shadow's
    comparison on the same rows, a canary's health beside the champion)."""

    stage: StageRecord
    comparison: Comparison | None
    health: canary.Health | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the API."""
        return {
            **asdict(self.stage),
            "comparison": None if self.comparison is None else self.comparison.as_dict(),
            "health": None if self.health is None else self.health.as_dict(),
        }


def check_stage(stage: object) -> str:
    """``stage`` when it names a stage that can be started; ValidationFailed naming ``stage`` otherwise."""
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
    share: float | None = None,
    registry: Registry | None = None,
) -> StageRecord:
    """Put ``version`` in ``stage`` beside the champion; a canary takes ``share`` of the
    requests (the policy's ``canary.share`` when None). Refused: no champion, the champion
    itself, an unknown version, an input signature other than the champion's, a share outside
    (0, 1) or given for a shadow."""
    stage = check_stage(stage)
    version = check_version(version)
    found = store.get_service(service)
    details = _stage_details(settings, found, stage, share)
    registry = registry or Registry.from_settings(settings, store)
    champion = _checked_challenger(registry, settings, found, version)
    started = store.start_stage(found, stage, version, champion=champion, actor=actor, details=details)
    store.audit(actor, "stage.start", found.name, {"stage": stage, "version": version, "champion": champion, **details})
    if stage == CANARY:
        _move_alias(registry, found, started, actor, on=True)
    emit(store, settings, started_event(stage), {**_event(found, started, actor), **details})
    return started


def _stage_details(settings: Settings, service: Service, stage: str, share: float | None) -> dict[str, Any]:
    """What a stage runs with: a canary's share of the requests; nothing for a shadow."""
    if stage != CANARY:
        if share is not None:
            raise ValidationFailed("share", f"a {stage} scores every request and takes no share; leave share out")
        return {}
    if share is None:
        share = settings.retrain_policy(service.name).canary.share
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 < float(share) < 1.0:
        raise ValidationFailed(
            "share", f"a canary's share of requests must lie between 0 and 1 (exclusive), got {share!r}"
        )
    return {"share": float(share)}


def _move_alias(registry: Registry, service: Service, stage: StageRecord, actor: str, *, on: bool) -> None:
    """Set (``on``) or remove the ``canary`` alias of a canary stage's version; a registry that
    refuses leaves serving unchanged (it routes by the stage), so it is logged, not raised."""
    reason = f"canary stage {stage.id} {'started' if on else 'ended'}"
    try:
        if on:
            registry.set_stage_alias(service, CANARY, stage.version, actor=actor, reason=reason)
        else:
            registry.remove_stage_alias(service, CANARY, actor=actor, reason=reason)
    except MlwatchError:
        log.warning("could not %s the canary alias of %s", "set" if on else "remove", service.name, exc_info=True)


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
    """End ``stage`` (once: a second ending changes nothing) and announce it; a canary's alias goes with it."""
    if details is None:
        details = _judged(store, settings, service, stage)
    details = {**stage.details, **details}
    ended, changed = store.end_stage(service, stage.id, status, reason, details=details)
    if changed:
        audited = {"stage_id": stage.id, "stage": stage.stage, "status": status, "reason": reason}
        if "health" in details:  # a canary's numbers: what it was rolled back or promoted on
            audited["health"] = details["health"]
        store.audit(actor, "stage.end", service.name, audited)
        if stage.stage == CANARY:
            _move_alias(Registry.from_settings(settings, store), service, stage, actor, on=False)
        severity = "warning" if status in ("crashed", "failed", "rolled_back") else "info"
        event = ended_event(stage.stage, status)
        emit(store, settings, event, {**_event(service, ended, actor), **details}, severity=severity)
    return ended


def _judged(store: Store, settings: Settings, service: Service, stage: StageRecord) -> dict[str, Any]:
    """What a stage is judged on when it ends: a shadow's comparison, a canary's health."""
    if stage.stage == CANARY:
        policy = settings.retrain_policy(service.name)
        return {"health": canary.health(store, service, stage, policy, now=time.time()).as_dict()}
    return {"comparison": comparison_of(store, settings, service, stage).as_dict()}


def record_crash(store: Store, settings: Settings, service: Service, stage: StageRecord, error: str) -> StageRecord:
    """Count a crash of the stage's version (in shadow, or a canary that cannot load) and end
    its stage with the error as the reason."""
    crashes = store.count_stage_crash(service, stage.id)
    reason = f"the {stage.stage} version {stage.version} crashed ({crashes} crash(es)): {error}"[:2000]
    return end_stage(store, settings, service, stage, "crashed", reason, actor="mlwatch serve", details={})


def comparison_of(store: Store, settings: Settings, service: Service, stage: StageRecord) -> Comparison:
    """Champion and shadow of ``stage`` compared on the rows the shadow scored."""
    gate = settings.retrain_policy(service.name).gate
    return compare(store.shadow_pairs(service, stage.id), service.task, gate)


def stages_view(store: Store, settings: Settings, service: str, *, limit: int = 20) -> list[StageView]:
    """The service's stages, newest first; the active one with its live comparison or health."""
    found = store.get_service(service)
    return [_view(store, settings, found, s) for s in store.list_stages(found, limit=limit)]


def _view(store: Store, settings: Settings, service: Service, stage: StageRecord) -> StageView:
    if not stage.active:
        return StageView(stage, None)
    if stage.stage == CANARY:
        policy = settings.retrain_policy(service.name)
        return StageView(stage, None, canary.health(store, service, stage, policy, now=time.time()))
    return StageView(stage, comparison_of(store, settings, service, stage))


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
    """Apply the policy to the service's active stage; the stage if this call ended it."""
    stage = store.active_stage(service)
    when = time.time() if now is None else now
    if stage is None:
        return None
    if stage.stage == CANARY:
        return _review_canary(store, settings, service, stage, registry, when)
    return _review_shadow(store, settings, service, stage, registry, when)


def _review_shadow(
    store: Store, settings: Settings, service: Service, stage: StageRecord, registry: Registry | None, when: float
) -> StageRecord | None:
    """Ends a shadow ``passed`` once ``shadow.min_labelled`` of its rows have labels and the
    gate, with its significance rule, finds it better on them (then, under ``auto_promote``,
    promotes it, or starts its canary when the policy's stages go on to one); ``failed`` when
    the gate does not; ``expired`` after ``shadow.max_duration`` without that many labels."""
    policy = settings.retrain_policy(service.name)
    comparison = comparison_of(store, settings, service, stage)
    details = {"comparison": comparison.as_dict()}
    if comparison.labelled >= policy.shadow.min_labelled and comparison.verdict is not None:
        verdict = comparison.verdict
        status = "passed" if verdict.passed else "failed"
        reason = f"{'better' if verdict.passed else 'not better'} on {comparison.labelled} live labelled rows: "
        ended = end_stage(
            store, settings, service, stage, status, reason + verdict.reason, actor="mlwatch", details=details
        )
        if verdict.passed and policy.auto_promote:
            if CANARY in policy.stages:
                _start_canary(store, settings, service, stage, registry)
            else:
                _promote(store, settings, service, stage, f"shadow: {verdict.reason}", registry)
        return ended
    if when - stage.started_at >= policy.shadow.max_duration:
        reason = (
            f"{comparison.labelled} of the {policy.shadow.min_labelled} labelled rows needed after "
            f"{policy.shadow.max_duration:.0f}s in shadow"
        )
        return end_stage(store, settings, service, stage, "expired", reason, actor="mlwatch", details=details)
    return None


def _review_canary(
    store: Store, settings: Settings, service: Service, stage: StageRecord, registry: Registry | None, when: float
) -> StageRecord | None:
    """Rolls a canary back at its first breached guard; once it held for ``canary.duration``,
    ends it ``passed`` and promotes it, or ``expired`` when it served too few requests to be judged."""
    policy = settings.retrain_policy(service.name)
    found = canary.health(store, service, stage, policy, now=when)
    details = {"health": found.as_dict()}
    if found.breaches:
        reason = "rolled back: " + "; ".join(found.breaches)
        return end_stage(store, settings, service, stage, "rolled_back", reason, actor="mlwatch", details=details)
    guard = policy.canary
    if when - stage.started_at < guard.duration:
        return None
    if "error_rate" not in found.judged:
        reason = (
            f"served {found.canary.requests} requests in {guard.duration:.0f}s beside the champion's "
            f"{found.champion.requests}; {guard.min_requests} each are needed to judge it"
        )
        return end_stage(store, settings, service, stage, "expired", reason, actor="mlwatch", details=details)
    reason = f"held for {guard.duration:.0f}s on {found.canary.requests} requests: no guard breached"
    if "quality" not in found.judged:
        reason += f" (quality not judged: {found.canary.labelled} of {guard.min_labelled} labelled rows)"
    ended = end_stage(store, settings, service, stage, "passed", reason, actor="mlwatch", details=details)
    _promote(store, settings, service, stage, f"canary: {reason}", registry)
    return ended


def _start_canary(
    store: Store, settings: Settings, service: Service, shadow: StageRecord, registry: Registry | None
) -> None:
    """The canary after a passed shadow; a refusal leaves the version registered and says why."""
    try:
        actor = f"shadow:{shadow.id}"
        start_stage(store, settings, service.name, shadow.version, CANARY, actor=actor, registry=registry)
    except MlwatchError as exc:
        log.warning("version %s passed its shadow but could not start its canary: %s", shadow.version, exc)


def _promote(
    store: Store, settings: Settings, service: Service, stage: StageRecord, reason: str, registry: Registry | None
) -> None:
    from retrain.actions import promote

    actor = f"{stage.stage}:{stage.id}"
    promote(store, settings, service.name, stage.version, actor=actor, reason=reason, registry=registry)
