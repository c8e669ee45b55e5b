"""Deleting raw rows past their retention period, and keeping time partitions created ahead.

On PostgreSQL whole days of predictions and labels are dropped as partitions; the rows
left to delete one by one are those of the day the cut falls in and of the default
partition, and, afterwards, the request ids the dropped rows held
(``monitor.store.partitions``). SQLite deletes by condition, as always.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine, delete, select

from monitor.store import schema as t
from monitor.store.engine import write_transaction
from monitor.store.partitions import layout

CLAIMS_PER_TRANSACTION = 50_000
"""Request ids released per transaction after a purge: short transactions, a few a day."""


class RetentionPeriods(Protocol):
    """How long each raw table keeps its rows, in seconds (``retention:`` of the settings has these)."""

    @property
    def predictions(self) -> float:
        """Predictions and labels."""

    @property
    def host_samples(self) -> float:
        """Samples of the host agents."""

    @property
    def traffic_rollups(self) -> float:
        """Per-minute traffic counts."""


class RetentionMixin:
    """Store methods the worker calls to keep raw tables bounded."""

    engine: Engine

    def purge(self, retention: RetentionPeriods, now: float) -> dict[str, int]:
        """Delete predictions (a shadow's too), labels, host samples and rollups older than configured;
        counts per table."""
        p, tm, cut = t.predictions, t.traffic_minutes, now - retention.predictions
        # service and minute let the index find the rows (and PostgreSQL the partitions: as a
        # float, the bound compared minute::float8 and read every row); ts is exact within the last minute
        old_predictions = p.c.service_id.in_(select(t.services.c.id)) & (p.c.minute <= int(cut // 60)) & (p.c.ts < cut)
        cuts = {
            "predictions": (p, old_predictions),
            "labels": (t.labels, t.labels.c.ts < cut),
            "host_samples": (t.host_samples, t.host_samples.c.ts < now - retention.host_samples),
            "traffic_minutes": (tm, tm.c.minute < int((now - retention.traffic_rollups) // 60)),
            "shadow_predictions": (t.shadow_predictions, t.shadow_predictions.c.ts < cut),  # as predictions
        }
        with write_transaction(self.engine) as conn:
            tables = layout(conn.dialect.name)
            deleted = tables.drop_before(conn, cut)
            for name, (table, condition) in cuts.items():
                deleted[name] = deleted.get(name, 0) + conn.execute(delete(table).where(condition)).rowcount
        return deleted

    def forget_request_ids(self, before: float, per_transaction: int = CLAIMS_PER_TRANSACTION) -> int:
        """Release the request ids of predictions older than ``before`` (PostgreSQL keeps them
        apart, ``monitor.store.partitions``), a bounded number per transaction; how many."""
        released = 0
        while True:
            with write_transaction(self.engine) as conn:
                step = layout(conn.dialect.name).forget_request_ids(conn, before, per_transaction)
            released += step
            if step < per_transaction:
                return released

    def create_partitions_ahead(self, now: float) -> list[str]:
        """Create the time partitions of today and the days ahead (PostgreSQL); the names created."""
        with write_transaction(self.engine) as conn:
            return layout(conn.dialect.name).create_ahead(conn, now)
