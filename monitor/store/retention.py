"""Deleting raw rows past their retention period."""

from __future__ import annotations

from sqlalchemy import Engine, delete

from monitor.config import RetentionConfig
from monitor.store import schema as t
from monitor.store.engine import write_transaction


class RetentionMixin:
    """Store method the worker calls to keep raw tables bounded."""

    engine: Engine

    def purge(self, retention: RetentionConfig, now: float) -> dict[str, int]:
        """Delete predictions, labels, host samples and rollups older than configured; counts per table."""
        cuts = {
            "predictions": (t.predictions, t.predictions.c.ts, now - retention.predictions),
            "labels": (t.labels, t.labels.c.ts, now - retention.predictions),
            "host_samples": (t.host_samples, t.host_samples.c.ts, now - retention.host_samples),
            "traffic_minutes": (t.traffic_minutes, t.traffic_minutes.c.minute, (now - retention.traffic_rollups) // 60),
        }
        deleted = {}
        with write_transaction(self.engine) as conn:
            for name, (table, column, cut) in cuts.items():
                deleted[name] = conn.execute(delete(table).where(column < cut)).rowcount
        return deleted
