"""Predictions and labels in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from monitor.errors import ValidationFailed
from monitor.ingest import Ingestor
from monitor.records import PredictionRecord
from monitor.server.auth import Principal, require
from monitor.server.body import decoded_body, json_body, openapi_body
from monitor.server.routes.services import StoreDep
from monitor.server.schemas import IngestOut, LabelBatch, PredictionBatch, ServiceName
from monitor.server.wire import decode_predictions

router = APIRouter(prefix="/v1/services", tags=["ingest"])
Ingest = Annotated[Principal, Depends(require("ingest"))]


def _ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor = request.app.state.ingestor
    return ingestor


def _check_size(request: Request, count: int, field: str) -> None:
    limit: int = request.app.state.settings.max_batch_records
    if count > limit:
        raise ValidationFailed(field, f"at most {limit} items per batch, got {count}; split the batch")


@router.post("/{service}/predictions", response_model=IngestOut, openapi_extra=openapi_body(PredictionBatch))
def add_predictions(
    _: Ingest,
    service: ServiceName,
    records: Annotated[list[PredictionRecord], Depends(decoded_body(decode_predictions))],
    store: StoreDep,
    request: Request,
) -> IngestOut:
    """Store a batch of predictions (whole or not at all); request ids already stored are skipped."""
    _check_size(request, len(records), "records")
    result = _ingestor(request).predictions(store.get_service(service), records)
    return IngestOut(accepted=result.accepted, duplicates=result.duplicates)


@router.post("/{service}/labels", response_model=IngestOut, openapi_extra=openapi_body(LabelBatch))
def add_labels(
    _: Ingest,
    service: ServiceName,
    body: Annotated[LabelBatch, Depends(json_body(LabelBatch))],
    store: StoreDep,
    request: Request,
) -> IngestOut:
    """Store delayed ground truth, joined to predictions by request id."""
    _check_size(request, len(body.labels), "labels")
    result = _ingestor(request).labels(store.get_service(service), [r.record() for r in body.labels])
    return IngestOut(accepted=result.accepted, duplicates=result.duplicates)
