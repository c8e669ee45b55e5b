"""The gate's decisions on model versions (``model_decisions``)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, select

from monitor.errors import ValidationFailed
from monitor.records import DecisionRecord
from monitor.store import schema as t
from monitor.store.codec import loads
from monitor.store.engine import write_transaction
from monitor.store.services import audit_values
from monitor.store.storable import check_text, json_text, storable_message

DECISIONS = ("promote", "reject", "pending", "shadow", "canary")
"""``shadow``: passed the gate and went into shadow, to be promoted once better on live rows;
``canary``: passed the gate and went to a canary, to be promoted once it held (``retrain.stages``)."""


class DecisionsMixin:
    """Store methods that keep and list gate decisions."""

    engine: Engine

    def add_decision(
        self,
        *,
        service: str,
        model_name: str,
        version: str,
        job_id: int | None,
        decision: str,
        metrics: dict[str, Any],
        reason: str,
    ) -> DecisionRecord:
        """Record the gate's verdict on ``version`` with the numbers it compared."""
        if decision not in DECISIONS:
            raise ValidationFailed("decision", f"expected one of {', '.join(DECISIONS)}, got {decision!r}")
        values = {
            "service": service,
            "model_name": model_name,
            "version": str(version),
            "job_id": job_id,
            "decision": decision,
            "metrics": json_text("metrics", metrics),
            "reason": storable_message(reason),
            "created_at": time.time(),
        }
        with write_transaction(self.engine) as conn:
            key = conn.execute(t.model_decisions.insert().values(**values)).inserted_primary_key
        assert key is not None
        new_id = int(key[0])
        return _decision({**values, "id": new_id, "metrics": values["metrics"]})

    def list_decisions(self, service: str, *, limit: int = 50) -> list[DecisionRecord]:
        """Decisions on ``service``'s versions, newest first."""
        check_text("service", service)
        d = t.model_decisions
        query = select(d).where(d.c.service == service).order_by(d.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_decision(r._mapping) for r in conn.execute(query)]


def _decision(row: Any) -> DecisionRecord:
    return DecisionRecord(
        id=int(row["id"]),
        service=row["service"],
        model_name=row["model_name"],
        version=row["version"],
        job_id=row["job_id"],
        decision=row["decision"],
        metrics=loads(row["metrics"]),
        reason=row["reason"],
        created_at=row["created_at"],
    )


def audit_on(conn: Connection, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    """Write an audit entry inside the caller's transaction (e.g. while holding a store lock)."""
    conn.execute(t.audit_log.insert().values(ts=time.time(), **audit_values(actor, action, target, details)))
