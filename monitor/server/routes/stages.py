"""Rollout stages of a service's challengers: start a shadow or a canary, see it beside the champion, abort it.

Handlers call ``retrain.stages`` (the same functions as the CLI and the worker); mlflow is
imported only when a handler that needs it runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from monitor.config import Text
from monitor.server.body import json_body, openapi_body, optional_json_body
from monitor.server.routes.models import ModelVersion, Operator, Reason, SettingsDep, StoreDep, Viewer
from monitor.server.schemas import ServiceName
from retrain import stages

router = APIRouter(tags=["models"])


class StageIn(BaseModel):
    """Start ``stage`` (``shadow`` or ``canary``) for ``version``; ``share``: a canary's share of requests."""

    model_config = ConfigDict(extra="forbid")
    version: ModelVersion
    stage: Annotated[Text, Field(description="the stage to start: 'shadow' or 'canary'")] = "shadow"
    share: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="canary only: the share of requests it answers (default: the policy's canary.share)",
    )


class AbortIn(BaseModel):
    """Why the stage in progress is ended."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason = "aborted by an operator"


@router.post("/v1/services/{service}/stages", status_code=201, openapi_extra=openapi_body(StageIn))
def start(
    who: Operator,
    service: ServiceName,
    body: Annotated[StageIn, Depends(json_body(StageIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Put a version that is not the champion in shadow (``mlwatch serve`` scores it beside the
    champion) or in canary (it answers ``share`` of the requests, guarded against the champion)."""
    stage = stages.check_stage(body.stage)
    started = stages.start_stage(store, settings, service, body.version, stage, actor=who.name, share=body.share)
    return stages.StageView(started, None).as_dict()


@router.get("/v1/services/{service}/stages")
def listing(
    service: ServiceName,
    store: StoreDep,
    settings: SettingsDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """The service's stages, newest first; the active one with champion and shadow compared on
    the same rows, or the canary's health beside the champion's."""
    views = stages.stages_view(store, settings, service, limit=limit)
    active = next((v for v in views if v.stage.active), None)
    return {
        "service": service,
        "active": None if active is None else active.as_dict(),
        "stages": [v.as_dict() for v in views],
    }


@router.delete("/v1/services/{service}/stages", openapi_extra=openapi_body(AbortIn, required=False))
def abort(
    who: Operator,
    service: ServiceName,
    body: Annotated[AbortIn | None, Depends(optional_json_body(AbortIn))],
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """End the stage in progress as ``aborted`` (its shadow or canary stops at ``mlwatch serve``'s next poll)."""
    reason = (body or AbortIn()).reason
    ended = stages.end_active(store, settings, service, "aborted", reason, actor=who.name)
    return stages.StageView(ended, None).as_dict()
