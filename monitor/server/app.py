"""The ingest/query API (FastAPI). ``mlwatch server`` serves ``create_app``.

>>> app = create_app(load_settings(), Store.open("sqlite:///.mlwatch/mlwatch.db"))
"""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.config import Settings
from monitor.ingest import Ingestor
from monitor.records import Feature
from monitor.server import errors
from monitor.server.auth import TokenAuth
from monitor.server.body import register_schemas
from monitor.server.limits import BodyLimit
from monitor.server.routes import BODIES, ROUTERS
from monitor.settings import load_settings
from monitor.store import Store


def create_app(settings: Settings, store: Store) -> FastAPI:
    """Build the API over ``store``; services from the config are registered first."""
    sync_services(settings, store)
    app = FastAPI(
        title="mlwatch",
        version=__version__,
        description="Ingest and query API of mlwatch. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.ingestor = Ingestor(store)
    app.state.auth = TokenAuth(store, settings.bootstrap_token)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    register_schemas(app, BODIES)
    return app


def sync_services(settings: Settings, store: Store) -> None:
    """Register (or update) every service named in the configuration."""
    for svc in settings.services:
        features = tuple(Feature(f.name, f.type, f.drift_method, f.drift_threshold) for f in svc.features)
        if not features and svc.name in {s.name for s in store.list_services()}:
            features = store.get_service(svc.name).features  # keep a schema registered through the API
        store.upsert_service(
            svc.name,
            task=svc.task,
            model_name=svc.model_name,
            target=svc.target,
            features=features,
            config=svc.model_dump(mode="json", exclude={"name", "task", "model_name", "target", "features"}),
        )


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: configuration from mlwatch.yaml and MLWATCH_*."""
    settings = load_settings()
    return create_app(settings, Store.open(settings.store_url))
