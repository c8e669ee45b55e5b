"""Rollout stages (``rollout_stages``) and what a challenger in shadow predicted (``shadow_predictions``).

At most one stage is active per service: ``start_stage`` checks and inserts under a store
lock, so two operators starting a shadow at once make one. A stage ends once, with a status
and a reason; ``end_stage`` on a stage that already ended changes nothing and says so.
Shadow rows are kept beside the champion's answer to the same request, so the two are
compared on the same rows without reading ``predictions`` (which checks sample and retention
partitions); labels join them by request id.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, func, select, update

from monitor.errors import Conflict, NotFound, ValidationFailed
from monitor.records import STAGE_STATUSES, Service, ShadowPair, ShadowRow, StageRecord
from monitor.store import schema as t
from monitor.store.codec import dumps, loads
from monitor.store.engine import write_transaction
from monitor.store.locks import LocksMixin
from monitor.store.storable import check_text, json_text, storable_message

ENDED = tuple(s for s in STAGE_STATUSES if s != "active")


class StagesMixin(LocksMixin):
    """Store methods for rollout stages and shadow predictions."""

    engine: Engine

    def start_stage(
        self,
        service: Service,
        stage: str,
        version: str,
        *,
        champion: str | None,
        actor: str,
        details: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> StageRecord:
        """Open ``stage`` for ``version`` (``details``: what it runs with, a canary's share);
        Conflict when the service has an active stage already."""
        check_text("version", version, 100)
        check_text("actor", actor)
        with self.exclusive(f"mlwatch.stages:{service.id}") as conn:
            active = conn.execute(_active_query(service.id)).first()
            if active is not None:
                raise Conflict(
                    f"service {service.name!r} already has version {active.version} in {active.stage} "
                    f"(stage {active.id}); end it first with DELETE /v1/services/{service.name}/stages"
                )
            values = {
                "service_id": service.id,
                "stage": stage,
                "version": version,
                "champion_version": champion,
                "status": "active",
                "started_at": time.time() if now is None else now,
                "actor": actor,
                "crashes": 0,
                "details": json_text("details", details or {}),
            }
            key = conn.execute(t.rollout_stages.insert().values(**values)).inserted_primary_key
        assert key is not None
        return _stage(service.name, {**values, "id": int(key[0]), "ended_at": None, "reason": None})

    def active_stage(self, service: Service) -> StageRecord | None:
        """The service's stage in progress, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(_active_query(service.id)).first()
        return None if row is None else _stage(service.name, row._mapping)

    def get_stage(self, service: Service, stage_id: int) -> StageRecord:
        """Stage ``stage_id`` of ``service``; NotFound if it has none of that id."""
        s = t.rollout_stages
        with self.engine.connect() as conn:
            row = conn.execute(select(s).where(s.c.id == stage_id, s.c.service_id == service.id)).first()
        if row is None:
            raise NotFound(f"service {service.name!r} has no stage {stage_id}; GET /v1/services/<service>/stages")
        return _stage(service.name, row._mapping)

    def list_stages(self, service: Service, *, limit: int = 50) -> list[StageRecord]:
        """The service's stages, newest first."""
        s = t.rollout_stages
        query = select(s).where(s.c.service_id == service.id).order_by(s.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_stage(service.name, r._mapping) for r in conn.execute(query)]

    def end_stage(
        self,
        service: Service,
        stage_id: int,
        status: str,
        reason: str,
        *,
        details: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> tuple[StageRecord, bool]:
        """End an active stage with ``status`` and ``reason``; True when this call ended it."""
        if status not in ENDED:
            raise ValidationFailed("status", f"expected one of {', '.join(ENDED)}, got {status!r}")
        s = t.rollout_stages
        values = {
            "status": status,
            "reason": storable_message(reason),
            "ended_at": time.time() if now is None else now,
            "details": json_text("details", details or {}),
        }
        with write_transaction(self.engine) as conn:
            active = and_(s.c.id == stage_id, s.c.service_id == service.id, s.c.status == "active")
            done = conn.execute(update(s).where(active).values(**values)).rowcount
        return self.get_stage(service, stage_id), bool(done)

    def count_stage_crash(self, service: Service, stage_id: int) -> int:
        """Add one to the stage's crash count; returns the count after it."""
        s = t.rollout_stages
        with write_transaction(self.engine) as conn:
            conn.execute(update(s).where(s.c.id == stage_id).values(crashes=s.c.crashes + 1))
            return int(conn.execute(select(s.c.crashes).where(s.c.id == stage_id)).scalar_one())

    def add_shadow_rows(self, service: Service, stage_id: int, rows: Sequence[ShadowRow]) -> int:
        """Keep what the shadow of ``stage_id`` predicted; a request already kept is skipped. Returns rows kept."""
        if not rows:
            return 0
        sp = t.shadow_predictions
        ids = [r.request_id for r in rows]
        with write_transaction(self.engine) as conn:
            known = set(
                conn.execute(select(sp.c.request_id).where(sp.c.stage_id == stage_id, sp.c.request_id.in_(ids)))
                .scalars()
                .all()
            )
            fresh = {r.request_id: r for r in rows if r.request_id not in known}
            if fresh:
                conn.execute(sp.insert(), [_shadow_values(service, stage_id, r) for r in fresh.values()])
        return len(fresh)

    def shadow_pairs(self, service: Service, stage_id: int, *, limit: int = 100_000) -> list[ShadowPair]:
        """The stage's shadow rows (the newest ``limit``) with the champion's answer and any label."""
        sp, lab = t.shadow_predictions, t.labels
        joined = sp.outerjoin(lab, and_(lab.c.service_id == sp.c.service_id, lab.c.request_id == sp.c.request_id))
        query = (
            select(sp, lab.c.label, lab.c.request_id.label("label_request_id"))
            .select_from(joined)
            .where(sp.c.stage_id == stage_id)
            .order_by(sp.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_pair(r) for r in conn.execute(query)]

    def shadow_row_count(self, stage_id: int) -> int:
        """How many requests the stage's shadow scored."""
        sp = t.shadow_predictions
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(sp.c.stage_id == stage_id)).scalar_one())


def _active_query(service_id: int) -> Any:
    s = t.rollout_stages
    return select(s).where(s.c.service_id == service_id, s.c.status == "active").order_by(s.c.id.desc()).limit(1)


def _shadow_values(service: Service, stage_id: int, row: ShadowRow) -> dict[str, Any]:
    return {
        "stage_id": stage_id,
        "service_id": service.id,
        "request_id": row.request_id[:200],
        "ts": row.ts,
        "model_version": row.version,
        "prediction": dumps(row.prediction),
        "probabilities": None if row.probabilities is None else dumps(row.probabilities),
        "latency_ms": row.latency_ms,
        "champion_version": row.champion_version,
        "champion_prediction": dumps(row.champion_prediction),
        "champion_probabilities": None if row.champion_probabilities is None else dumps(row.champion_probabilities),
    }


def _pair(row: Any) -> ShadowPair:
    return ShadowPair(
        request_id=row.request_id,
        prediction=loads(row.prediction),
        probabilities=loads(row.probabilities),
        champion_prediction=loads(row.champion_prediction),
        champion_probabilities=loads(row.champion_probabilities),
        label=loads(row.label),
        has_label=row.label_request_id is not None,
    )


def _stage(service: str, row: Any) -> StageRecord:
    return StageRecord(
        id=int(row["id"]),
        service=service,
        stage=row["stage"],
        version=row["version"],
        champion_version=row["champion_version"],
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        reason=row["reason"],
        actor=row["actor"],
        crashes=int(row["crashes"]),
        details=loads(row["details"]) or {},
    )
