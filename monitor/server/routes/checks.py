"""Drift/quality checks: run one now, list them, their Evidently report; reference data uploads.

Evidently is imported only when a check or a report is asked for (``monitor.drift.check``
and ``monitor.drift.report`` are imported inside the handlers), never at start-up.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from monitor.config import Text
from monitor.errors import ValidationFailed
from monitor.records import CheckRecord, Service
from monitor.server.auth import Principal, require
from monitor.server.body import decoded_body, openapi_body, optional_json_body
from monitor.server.routes.services import StoreDep
from monitor.server.schemas import Cell, EpochQuery, EpochSeconds, ObjectId, ServiceName
from monitor.store import Store

router = APIRouter(tags=["checks"])
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Version = Annotated[Text, StringConstraints(max_length=100)]
_LOCK = threading.Lock()
log = logging.getLogger(__name__)


class CheckIn(BaseModel):
    """Which window to check now (default: the service's window length, ending now)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: EpochSeconds | None = Field(default=None, description="epoch seconds")
    end: EpochSeconds | None = Field(default=None, description="epoch seconds; default now")
    sample_size: int | None = Field(default=None, ge=100, le=1_000_000)


class CheckOut(BaseModel):
    """A stored check: window, verdicts (``summary``) and per-feature results."""

    id: int
    service: str
    window_start: float
    window_end: float
    created_at: float
    model_version: str | None
    status: str
    trigger: str
    summary: dict[str, Any]
    results: dict[str, Any]
    error: str | None
    report_url: str


class ReferenceRecordsIn(BaseModel):
    """Reference data as JSON records (one object of column values per row)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    records: list[Annotated[dict[Text, Cell], Field(max_length=5000)]] = Field(min_length=1)
    model_version: Version | None = None


class ReferenceOut(BaseModel):
    """The reference stored for a service (and model version, '' for any)."""

    service: str
    model_version: str
    rows: int
    source: str
    created_at: float
    columns: list[str]
    missing_features: list[str]
    baseline: dict[str, float] | None


def _out(check: CheckRecord, service: str) -> CheckOut:
    fields = {k: getattr(check, k) for k in ("id", "window_start", "window_end", "created_at", "model_version")}
    return CheckOut(
        service=service,
        status=check.status,
        trigger=check.trigger,
        summary=check.summary.encode(),
        results=check.results,
        error=check.error,
        report_url=f"/v1/checks/{check.id}/report",
        **fields,
    )


@router.post(
    "/v1/services/{service}/checks", response_model=CheckOut, openapi_extra=openapi_body(CheckIn, required=False)
)
def run_check(
    who: Operator,
    service: ServiceName,
    body: Annotated[CheckIn | None, Depends(optional_json_body(CheckIn))],
    store: StoreDep,
    request: Request,
) -> CheckOut:
    """Run a check of the service's latest window (or the given one) now, and return it."""
    from monitor.drift.actions import run_check as run
    from monitor.drift.check import CheckRunner

    body = body or CheckIn()
    with _LOCK:  # one check at a time per process; the runner's reference cache is shared
        runner = getattr(request.app.state, "check_runner", None)
        if runner is None:
            runner = request.app.state.check_runner = CheckRunner.for_settings(store, request.app.state.settings)
        check, problems = run(
            store,
            request.app.state.settings,
            service,
            actor=who.name,
            trigger="api",
            start=body.start,
            end=body.end,
            sample_size=body.sample_size,
            runner=runner,
        )
    for problem in problems:
        log.warning("%s", problem)
    return _out(check, service)


@router.get("/v1/services/{service}/checks", response_model=list[CheckOut])
def list_checks(
    service: ServiceName,
    store: StoreDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    since: EpochQuery = None,
) -> list[CheckOut]:
    """The service's checks, newest first."""
    found = store.get_service(service)
    return [_out(c, service) for c in store.list_checks(found, limit=limit, since=since)]


@router.get("/v1/checks/{check_id}", response_model=CheckOut)
def get_check(check_id: ObjectId, store: StoreDep, _: Viewer) -> CheckOut:
    """One check."""
    check = store.get_check(check_id)
    return _out(check, _service_name(store, check.service_id))


REPORT_POLICY = "sandbox allow-scripts allow-popups; frame-ancestors 'none'"
"""The report's Content-Security-Policy: its charts' scripts run, in an origin of their own (the
sandbox has no allow-same-origin), so nothing in a report can reach the API's origin; no page
may frame it (the dashboard shows the stored report in a sandboxed ``srcdoc`` iframe)."""
REPORT_HEADERS = {
    "Content-Security-Policy": REPORT_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/v1/checks/{check_id}/report", response_class=HTMLResponse)
def check_report(check_id: ObjectId, store: StoreDep, _: Viewer, regenerate: bool = False) -> HTMLResponse:
    """The Evidently HTML report of a check: rendered on first request, then kept; served sandboxed."""
    from monitor.drift.report import check_report as report

    return HTMLResponse(report(store, check_id, regenerate=regenerate), headers=REPORT_HEADERS)


def _service_name(store: Store, service_id: int) -> str:
    return next((s.name for s in store.list_services() if s.id == service_id), str(service_id))


_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": ReferenceRecordsIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}, "model_version": {"type": "string"}},
                    "required": ["file"],
                }
            },
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
        }
    }
}


@router.post("/v1/services/{service}/reference", response_model=ReferenceOut, openapi_extra=_UPLOAD_DOC)
async def upload_reference(
    who: Admin,
    service: ServiceName,
    store: StoreDep,
    request: Request,
    model_version: Annotated[Version | None, Query(description="'' or absent: any version")] = None,
) -> ReferenceOut:
    """Set the reference (training) data: JSON records, a multipart file, or a raw Parquet/CSV body."""
    from monitor.drift.reference import keep_reference, read_upload

    found = store.get_service(service)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        frame, version, source = await _json_upload(request)
    else:
        data, filename, form_version = await _file_upload(request, content_type)
        frame, version, source = (
            await run_in_threadpool(read_upload, data, filename, content_type),
            form_version,
            filename,
        )
    version = version if version is not None else model_version
    info = await run_in_threadpool(keep_reference, store, found, frame, version or "", source or "upload")
    store.audit(who.name, "reference.set", service, {"model_version": info.model_version, "rows": info.row_count})
    return _reference_out(store, found, info.model_version)


async def _json_upload(request: Request) -> tuple[Any, str | None, str]:
    from monitor.drift.reference import frame_from_records

    body = await decoded_body(ReferenceRecordsIn.model_validate_json)(request)
    return frame_from_records(body.records), body.model_version, "api:json"


async def _file_upload(request: Request, content_type: str) -> tuple[bytes, str, str | None]:
    if not content_type.startswith("multipart/form-data"):
        data = await request.body()
        if not data:
            raise ValidationFailed(
                "body", "expected a Parquet or CSV body, JSON records or a multipart 'file'; got none"
            )
        return data, "api:upload", None
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ValidationFailed("file", "expected a multipart field 'file' holding a Parquet or CSV file")
    version = form.get("model_version")
    return await upload.read(), f"api:{upload.filename or 'upload'}", version if isinstance(version, str) else None


def _reference_out(store: Store, service: Service, version: str) -> ReferenceOut:
    stats = store.reference_stats(service, version)
    info = store.reference_info(service, version)
    assert info is not None
    return ReferenceOut(
        service=service.name,
        model_version=info.model_version,
        rows=info.row_count,
        source=info.source,
        created_at=info.created_at,
        columns=stats.get("frame_columns", []),
        missing_features=stats.get("missing_columns", []),
        baseline=stats.get("baseline"),
    )
