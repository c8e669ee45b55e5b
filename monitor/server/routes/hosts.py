"""Host, process and GPU samples from the agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from monitor.server.auth import Principal, require
from monitor.server.body import json_body, openapi_body
from monitor.server.routes.services import StoreDep
from monitor.server.schemas import HostSampleBatch, IngestOut

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])
HostName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


@router.post("/{host}/samples", response_model=IngestOut, openapi_extra=openapi_body(HostSampleBatch))
def add_samples(
    _: Annotated[Principal, Depends(require("ingest"))],
    host: HostName,
    body: Annotated[HostSampleBatch, Depends(json_body(HostSampleBatch))],
    store: StoreDep,
) -> IngestOut:
    """Store a batch of agent samples for ``host``."""
    result = store.add_host_samples(host, [s.record() for s in body.samples])
    return IngestOut(accepted=result.accepted, duplicates=result.duplicates)
