"""Registering and listing services; their traffic statistics."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from monitor.config import check_segments
from monitor.errors import Conflict, ValidationFailed
from monitor.records import Feature, Service, TrafficBucket
from monitor.server.auth import Principal, require
from monitor.server.body import json_body, openapi_body
from monitor.server.schemas import EpochQuery, ServiceIn, ServiceName, ServiceOut, StatsBucket, StatsOut
from monitor.store import Store

router = APIRouter(prefix="/v1/services", tags=["services"])


def get_store(request: Request) -> Store:
    """The app's store (a FastAPI dependency)."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def _out(store: Store, service: Service) -> ServiceOut:
    now = time.time()
    buckets = store.traffic_stats(service, now - 3600, now + 60, bucket_seconds=3600 * 2)
    return ServiceOut(
        name=service.name,
        task=service.task,
        model_name=service.model_name,
        target=service.target,
        features=[{"name": f.name, "type": f.type} for f in service.features],
        last_prediction_at=store.last_prediction_at(service),
        predictions_last_hour=sum(b.count for b in buckets),
        errors_last_hour=sum(b.errors for b in buckets),
    )


@router.post("", response_model=ServiceOut, openapi_extra=openapi_body(ServiceIn))
def register_service(
    who: Annotated[Principal, Depends(require("admin"))],
    body: Annotated[ServiceIn, Depends(json_body(ServiceIn))],
    store: StoreDep,
    replace: Annotated[bool, Query(description="replace the whole definition of an existing service")] = False,
) -> ServiceOut:
    """Register a service, or update one: features are added, settings (``window``,
    ``latency_bound_ms``, ``sample_size``, ``drift_share``, ``segments``, ``segment_top``,
    ``segment_min_rows``: ``monitor.config.CheckSettings``) changed one by one, and what the body
    leaves out is kept. A change that would drop or retype a feature, drop or change the target, or
    change the task is refused (409) unless ``?replace=true``; a segment that is not a categorical
    feature is refused (422 naming ``segments[i]``)."""
    existing = next((s for s in store.list_services() if s.name == body.name), None)
    definition = merged_definition(existing, body, replace=replace)
    _check_segments(body.name, definition)
    service = store.upsert_service(body.name, **definition)
    store.audit(who.name, "service.replace" if replace else "service.register", body.name, body.model_dump())
    return _out(store, service)


def merged_definition(existing: Service | None, body: ServiceIn, *, replace: bool) -> dict[str, Any]:
    """What to store for ``body`` over what is ``existing``: ``upsert_service``'s arguments."""
    settings = {**(existing.config if existing else {}), **body.settings()}
    if existing is None or replace:
        return {"task": body.task, "model_name": body.model_name, "target": body.target,
                "features": body.feature_records(), "config": settings}  # fmt: skip
    given = {f.name: f for f in body.feature_records()}
    changes = _breaking_changes(existing, body, given)
    if changes:
        raise Conflict(
            f"service {body.name!r} is registered already, and this body {'; '.join(changes)}; send the "
            "registered features and target too, or POST /v1/services?replace=true to replace its definition"
        )
    kept = existing.features + tuple(f for name, f in given.items() if existing.feature(name) is None)
    return {
        "task": existing.task,
        "model_name": body.model_name or existing.model_name,
        "target": body.target or existing.target,
        "features": tuple(given.get(f.name, f) for f in kept),  # drift overrides may change
        "config": settings,
    }


def _check_segments(name: str, definition: dict[str, Any]) -> None:
    """ValidationFailed naming ``segments[i]`` when a segment column is not one of the categorical
    features the service will have (``monitor.config.check_segments``)."""
    features = {f.name: f.type for f in definition["features"]}
    try:
        check_segments(tuple(definition["config"].get("segments") or ()), features, name)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise ValidationFailed(field, message) from exc


def _breaking_changes(existing: Service, body: ServiceIn, given: dict[str, Feature]) -> list[str]:
    """What ``body`` would take away from ``existing`` (an empty feature list keeps them all)."""
    found = []
    dropped = [f.name for f in existing.features if given and f.name not in given]
    if dropped:
        found.append(f"drops the features {', '.join(dropped)}")
    retyped = [f.name for f in existing.features if f.name in given and given[f.name].type != f.type]
    if retyped:
        found.append(f"changes the type of {', '.join(retyped)}")
    if body.target not in (None, existing.target):
        found.append(f"changes the target {existing.target!r} to {body.target!r}")
    if "task" in body.model_fields_set and body.task != existing.task:
        found.append(f"changes the task {existing.task!r} to {body.task!r}")
    return found


@router.get("", response_model=list[ServiceOut])
def list_services(store: StoreDep, _: Annotated[Principal, Depends(require("viewer"))]) -> list[ServiceOut]:
    """Every service with its recent traffic."""
    return [_out(store, s) for s in store.list_services()]


@router.get("/{service}", response_model=ServiceOut)
def get_service(
    service: ServiceName, store: StoreDep, _: Annotated[Principal, Depends(require("viewer"))]
) -> ServiceOut:
    """One service with its recent traffic."""
    return _out(store, store.get_service(service))


@router.get("/{service}/stats", response_model=StatsOut)
def service_stats(
    service: ServiceName,
    store: StoreDep,
    _: Annotated[Principal, Depends(require("viewer"))],
    start: EpochQuery = None,
    end: EpochQuery = None,
    bucket: Annotated[int, Query(ge=60, le=86400 * 31, multiple_of=60, description="seconds")] = 300,
    by_version: bool = False,
) -> StatsOut:
    """Count, errors and latency p50/p95/p99 per time bucket (and model version), from
    ``start`` (default: ``end`` less 24 hours) to ``end`` (default: now)."""
    end = time.time() if end is None else end
    start = end - 86400 if start is None else start
    found = store.get_service(service)
    buckets = store.traffic_stats(found, start, end, bucket, by_version=by_version)
    return StatsOut(
        service=service,
        start=start,
        end=end,
        bucket_seconds=bucket,
        buckets=[_bucket_out(b) for b in buckets],
    )


def _bucket_out(bucket: TrafficBucket) -> StatsBucket:
    return StatsBucket(
        start=bucket.start,
        model_version=bucket.model_version,
        count=bucket.count,
        errors=bucket.errors,
        error_rate=bucket.error_rate,
        latency_mean_ms=bucket.latency_mean_ms,
        latency_p50_ms=bucket.latency_p50_ms,
        latency_p95_ms=bucket.latency_p95_ms,
        latency_p99_ms=bucket.latency_p99_ms,
    )
