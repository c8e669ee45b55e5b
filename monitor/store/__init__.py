"""The store: one class over SQLite (embedded default) or PostgreSQL.

    >>> store = Store.open("sqlite:///.mlwatch/mlwatch.db")   # migrates an embedded store
    >>> service = store.get_service("credit")
    >>> store.add_predictions(service, records)

Methods live in one mixin per concept (services, ingest, queries, retention); later
capabilities (checks, alerts, webhooks, jobs) add theirs the same way.
"""

from __future__ import annotations

from sqlalchemy import Engine

from monitor.errors import StoreError
from monitor.roles import ROLES
from monitor.store.alerts import AlertsMixin
from monitor.store.checks import ChecksMixin
from monitor.store.consumers import ConsumersMixin
from monitor.store.decisions import DecisionsMixin
from monitor.store.engine import dispose, is_sqlite, make_engine
from monitor.store.groups import GroupsMixin
from monitor.store.halves import HalvesMixin
from monitor.store.ingest import IngestMixin
from monitor.store.jobs import JobsMixin
from monitor.store.migrate import current_revision, head_revision, upgrade
from monitor.store.outbox import OutboxMixin
from monitor.store.queries import QueriesMixin
from monitor.store.references import ReferencesMixin
from monitor.store.retention import RetentionMixin
from monitor.store.services import ServicesMixin
from monitor.store.sessions import SessionsMixin
from monitor.store.stages import StagesMixin
from monitor.store.traffic import TrafficMixin

__all__ = ["ROLES", "Store"]


class Store(
    ServicesMixin,
    IngestMixin,
    QueriesMixin,
    RetentionMixin,
    ChecksMixin,
    ReferencesMixin,
    JobsMixin,
    DecisionsMixin,
    OutboxMixin,
    AlertsMixin,
    GroupsMixin,
    TrafficMixin,
    SessionsMixin,
    HalvesMixin,
    ConsumersMixin,
    StagesMixin,
):
    """mlwatch's persistent state behind a few domain methods."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool | None = None) -> Store:
        """Open the store at ``url``; ``migrate`` defaults to True for SQLite, False otherwise.

        A PostgreSQL store must be migrated with ``mlwatch db upgrade`` first, so that
        several replicas never race to change the schema.
        """
        store = cls(make_engine(url))
        if migrate if migrate is not None else is_sqlite(store.engine):
            upgrade(store.engine)
        elif current_revision(store.engine) != head_revision():
            store.close()
            raise StoreError(
                f"the store at {store.engine.url.render_as_string(hide_password=True)} is at schema revision "
                f"{current_revision(store.engine)!r}, expected {head_revision()!r}; run `mlwatch db upgrade`"
            )
        return store

    def close(self) -> None:
        """Stop background checkpoints and release every pooled connection."""
        dispose(self.engine)
