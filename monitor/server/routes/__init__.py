"""The API's routers, one module per resource; ``ROUTERS`` is what the app mounts.

``BODIES`` are the request bodies the routes read through ``monitor.server.body`` (never
as FastAPI body parameters, which are read before authentication): the app adds them to
its OpenAPI schema.
"""

from __future__ import annotations

from pydantic import BaseModel

from monitor.cloudevents.events import CloudEventIn
from monitor.server.routes import (
    alerts,
    checks,
    cloudevents,
    health,
    hosts,
    ingest,
    metrics,
    models,
    schema,
    services,
    stages,
    tokens,
)
from monitor.server.schemas import HostSampleBatch, LabelBatch, PredictionBatch, ServiceIn

ROUTERS = [
    health.router,
    services.router,
    schema.router,
    ingest.router,
    cloudevents.router,
    hosts.router,
    alerts.router,
    checks.router,
    models.router,
    stages.router,
    metrics.router,
    tokens.router,
]
BODIES: list[type[BaseModel]] = [
    ServiceIn,
    PredictionBatch,
    LabelBatch,
    HostSampleBatch,
    checks.CheckIn,
    alerts.AckIn,
    alerts.SilenceIn,
    alerts.TestEventIn,
    models.RetrainIn,
    models.VersionIn,
    models.RollbackIn,
    stages.StageIn,
    stages.AbortIn,
    tokens.TokenIn,
    CloudEventIn,
]
