"""Deleting raw rows past their retention period."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from monitor.config import RetentionConfig
from monitor.store import schema as t
from monitor.store.engine import write_transaction


class RetentionMixin:
    """Store method the worker calls to keep raw tables bounded."""

    engine: Engine

    def purge(self, retention: RetentionConfig, now: float) -> dict[str, int]:
        """Delete predictions, labels, host samples and rollups older than configured; counts per table."""
        p, tm, cut = t.predictions, t.traffic_minutes, now - retention.predictions
        # service and minute let the index find the rows; ts is exact within the last minute
        old_predictions = p.c.service_id.in_(select(t.services.c.id)) & (p.c.minute <= cut // 60) & (p.c.ts < cut)
        cuts = {
            "predictions": (p, old_predictions),
            "labels": (t.labels, t.labels.c.ts < cut),
            "host_samples": (t.host_samples, t.host_samples.c.ts < now - retention.host_samples),
            "traffic_minutes": (tm, tm.c.minute < (now - retention.traffic_rollups) // 60),
        }
        deleted = {}
        with write_transaction(self.engine) as conn:
            for name, (table, condition) in cuts.items():
                deleted[name] = conn.execute(delete(table).where(condition)).rowcount
        return deleted
