"""A service's schema for the collectors: its features in order, and its target.

The proxy and the SDK read it with their ingest token to name the values a payload gives by
position (a V1 row list, a V2 tensor) after the registered features, in order
(``monitor.sdk.schema``); so the role is ``ingest``, not ``viewer``. An unknown service is a
404 whose message names no other service.

    $ curl -H "Authorization: Bearer $MLWATCH_TOKEN" http://127.0.0.1:8000/v1/services/credit/schema
    {"service": "credit", "features": [{"name": "age", "type": "numerical"}, ...], "target": "default"}
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from monitor.server.auth import Principal, require
from monitor.server.routes.services import StoreDep
from monitor.server.schemas import ServiceName

router = APIRouter(prefix="/v1/services", tags=["services"])


class SchemaFeature(BaseModel):
    """One registered feature: its name and type (``numerical``, ``categorical`` or ``text``)."""

    name: str
    type: str


class SchemaOut(BaseModel):
    """The features of a service in their registered order (the order of positional inputs), and its target."""

    service: str
    features: list[SchemaFeature]
    target: str | None


@router.get("/{service}/schema", response_model=SchemaOut)
def service_schema(
    service: ServiceName, store: StoreDep, _: Annotated[Principal, Depends(require("ingest"))]
) -> SchemaOut:
    """The ordered features and the target of ``service``, for the collectors that send its predictions."""
    found = store.get_service(service)
    features = [SchemaFeature(name=f.name, type=f.type) for f in found.features]
    return SchemaOut(service=found.name, features=features, target=found.target)
