"""Retrain jobs, promotion, rollback and the model registry view of a service.

Handlers call ``retrain.actions`` (the same functions as the CLI and the dashboard);
mlflow is imported only when a handler that needs it runs, never at start-up.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from monitor.config import LongText, Settings
from monitor.errors import Conflict
from monitor.records import JobRecord
from monitor.server.auth import Principal, require
from monitor.server.body import json_body, openapi_body, optional_json_body
from monitor.server.schemas import ID_MAX, ObjectId, ServiceName
from monitor.store import Store
from retrain import actions

router = APIRouter(tags=["models"])


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[Store, Depends(_store)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Operator = Annotated[Principal, Depends(require("operator"))]
Viewer = Annotated[Principal, Depends(require("viewer"))]


class RetrainIn(BaseModel):
    """A retrain request; ``mode`` defaults to the service's retrain policy."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["retrain", "fine_tune"] | None = None


def _version_number(value: object) -> str:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit() and 1 <= int(text[:12]) <= ID_MAX):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise ValueError(f"expected a registered model version, a number from 1 to {ID_MAX} such as '3', got {shown}")
    return str(int(text))


_VERSION_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]{1,10}$"}, {"type": "integer", "minimum": 1, "maximum": ID_MAX}],
    "description": "registered model version, e.g. '3'",
}
ModelVersion = Annotated[str, BeforeValidator(_version_number), WithJsonSchema(_VERSION_SCHEMA)]
"""A model version as MLflow numbers them: bounded here, so that the registry is never asked for 10**30."""


Reason = Annotated[LongText, Field(description="why, for the audit log and the webhook event")]


class VersionIn(BaseModel):
    """A model version number, e.g. ``"3"``, and optionally why it is promoted."""

    model_config = ConfigDict(extra="forbid")
    version: ModelVersion
    reason: Reason = "manual promotion"


class RollbackIn(BaseModel):
    """Optionally, the version expected to become champion again (the current ``previous``), and why."""

    model_config = ConfigDict(extra="forbid")
    version: ModelVersion | None = None
    reason: Reason = "manual rollback"


class JobOut(BaseModel):
    """A job: status, progress, log tail, and its result (version and decision) when done."""

    job_id: int
    kind: str
    service: str | None
    status: str
    progress: float
    log: str
    result: dict[str, Any] | None
    error: str | None
    params: dict[str, Any]
    created_by: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    claimed_by: str | None = Field(default=None, description="the worker running it, once claimed")
    cancel_requested: bool


class RetrainOut(BaseModel):
    """The job a retrain request made, or the active one it joined (``created`` false)."""

    job_id: int
    status: str
    created: bool


def _job(job: JobRecord) -> JobOut:
    fields = asdict(job)
    fields["job_id"] = fields.pop("id")
    return JobOut(**{k: v for k, v in fields.items() if k in JobOut.model_fields})


@router.post(
    "/v1/services/{service}/retrain", response_model=RetrainOut, status_code=202, openapi_extra=openapi_body(RetrainIn)
)
def retrain(
    who: Operator,
    service: ServiceName,
    body: Annotated[RetrainIn, Depends(json_body(RetrainIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> RetrainOut:
    """Queue a retrain (one active job per service: a second request returns the running one)."""
    job, created = actions.request_retrain(store, settings, service, mode=body.mode, actor=who.name)
    return RetrainOut(job_id=job.id, status=job.status, created=created)


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: ObjectId, store: StoreDep, _: Viewer) -> JobOut:
    """Status, progress, log tail, resulting version and decision of a job."""
    return _job(actions.get_job(store, job_id))


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: ObjectId, store: StoreDep, who: Operator) -> JobOut:
    """Cancel a queued job, or stop a running one."""
    return _job(actions.cancel_job(store, job_id, actor=who.name))


@router.post("/v1/services/{service}/promote", openapi_extra=openapi_body(VersionIn))
def promote(
    who: Operator,
    service: ServiceName,
    body: Annotated[VersionIn, Depends(json_body(VersionIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Make a version the champion; the old champion becomes ``previous``."""
    done = actions.promote(store, settings, service, body.version, actor=who.name, reason=body.reason)
    return asdict(done)


@router.post("/v1/services/{service}/rollback", openapi_extra=openapi_body(RollbackIn, required=False))
def rollback(
    who: Operator,
    service: ServiceName,
    body: Annotated[RollbackIn | None, Depends(optional_json_body(RollbackIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Swap champion and previous (the version, when given, must be the current ``previous``)."""
    body = body or RollbackIn()
    if body.version is not None:
        overview = actions.list_models(store, settings, service, limit=1)
        if overview.previous != body.version:
            raise Conflict(
                f"cannot roll back to version {body.version}: the rollback target ('previous') is {overview.previous}"
            )
    return asdict(actions.rollback(store, settings, service, actor=who.name, reason=body.reason))


@router.get("/v1/services/{service}/models")
def models(service: ServiceName, store: StoreDep, settings: SettingsDep, _: Viewer) -> dict[str, Any]:
    """Registry versions with aliases and metrics, gate decisions, and the alias history."""
    return asdict(actions.list_models(store, settings, service))
