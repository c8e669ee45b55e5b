"""Retrain jobs, promotion, rollback and the model registry view of a service.

Handlers call ``retrain.actions`` (the same functions as the CLI and the dashboard);
mlflow is imported only when a handler that needs it runs, never at start-up.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from monitor.config import Settings
from monitor.errors import Conflict
from monitor.server.auth import Principal, require
from monitor.server.schemas import ObjectId
from monitor.store import Store
from retrain import actions
from retrain.records import JobRecord

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


class VersionIn(BaseModel):
    """A model version number, e.g. ``"3"``."""

    model_config = ConfigDict(extra="forbid")
    version: str | int = Field(description="registered model version, e.g. '3'")


class RollbackIn(BaseModel):
    """Optionally, the version expected to become champion again (the current ``previous``)."""

    model_config = ConfigDict(extra="forbid")
    version: str | int | None = None


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


@router.post("/v1/services/{service}/retrain", response_model=RetrainOut, status_code=202)
def retrain(service: str, body: RetrainIn, store: StoreDep, settings: SettingsDep, who: Operator) -> RetrainOut:
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


@router.post("/v1/services/{service}/promote")
def promote(service: str, body: VersionIn, store: StoreDep, settings: SettingsDep, who: Operator) -> dict[str, Any]:
    """Make a version the champion; the old champion becomes ``previous``."""
    done = actions.promote(store, settings, service, str(body.version), actor=who.name)
    return asdict(done)


@router.post("/v1/services/{service}/rollback")
def rollback(
    service: str, store: StoreDep, settings: SettingsDep, who: Operator, body: RollbackIn | None = None
) -> dict[str, Any]:
    """Swap champion and previous (the version, when given, must be the current ``previous``)."""
    if body is not None and body.version is not None:
        overview = actions.list_models(store, settings, service, limit=1)
        if overview.previous != str(body.version).strip():
            raise Conflict(
                f"cannot roll back to version {body.version}: the rollback target ('previous') is {overview.previous}"
            )
    return asdict(actions.rollback(store, settings, service, actor=who.name))


@router.get("/v1/services/{service}/models")
def models(service: str, store: StoreDep, settings: SettingsDep, _: Viewer) -> dict[str, Any]:
    """Registry versions with aliases and metrics, gate decisions, and the alias history."""
    return asdict(actions.list_models(store, settings, service))
