"""The API's routers, one module per resource; ``ROUTERS`` is what the app mounts."""

from __future__ import annotations

from monitor.server.routes import alerts, checks, health, hosts, ingest, metrics, models, services, tokens

ROUTERS = [
    health.router,
    services.router,
    ingest.router,
    hosts.router,
    alerts.router,
    checks.router,
    models.router,
    metrics.router,
    tokens.router,
]
