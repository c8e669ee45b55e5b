"""The webhook outbox: rows written with the change they announce, claimed and delivered by workers.

Several workers may deliver at once. A worker claims due rows by setting a lease
(``claimed_until``) in a short write transaction: on PostgreSQL the rows are selected
``FOR UPDATE SKIP LOCKED`` so workers never wait on each other; on SQLite the transaction
is ``BEGIN IMMEDIATE``, which serializes claims. A worker that dies mid-delivery leaves
its lease to expire and the rows are delivered again: at least once, same ``event_id``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.store import schema as t
from monitor.store.engine import write_transaction

DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One event for one receiver, ready to be written to the outbox."""

    event_id: str
    receiver: str
    event_type: str
    payload: str  # the body exactly as it will be posted
    created_at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row with its delivery log: attempts, last status, latency and error."""

    id: int
    event_id: str
    receiver: str
    event_type: str
    payload: str
    status: str
    attempts: int
    created_at: float
    next_attempt_at: float
    delivered_at: float | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one delivery attempt did to its row."""

    delivery_id: int
    status: str  # delivered, pending (retry at next_attempt_at), failed
    at: float
    next_attempt_at: float
    status_code: int | None = None
    error: str | None = None
    latency_ms: float | None = None


class OutboxMixin:
    """Store methods of the webhook outbox and its delivery log."""

    engine: Engine

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite) for changes that must land together."""
        with write_transaction(self.engine) as conn:
            yield conn

    def enqueue_deliveries(self, entries: Sequence[OutboxEntry], *, conn: Connection | None = None) -> int:
        """Write outbox rows (in ``conn``'s transaction when given); re-enqueued (event, receiver) pairs are skipped."""
        if not entries:
            return 0
        if conn is None:
            with self.write_transaction() as own:
                return self.enqueue_deliveries(entries, conn=own)
        rows = [_row(e) for e in entries]
        d = t.webhook_deliveries
        stmt = upsert_statement(conn, d).on_conflict_do_nothing(index_elements=["event_id", "receiver"])
        return len(conn.execute(stmt.returning(d.c.id), rows).all())

    def claim_deliveries(self, now: float, *, limit: int, lease: float) -> list[Delivery]:
        """Claim up to ``limit`` due rows for ``lease`` seconds; each claim counts as an attempt."""
        d = t.webhook_deliveries
        due = (
            select(d.c.id)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now)
            .where(or_(d.c.claimed_until.is_(None), d.c.claimed_until <= now))
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.write_transaction() as conn:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(update(d).where(d.c.id.in_(ids)).values(claimed_until=now + lease, attempts=d.c.attempts + 1))
            rows = conn.execute(select(d).where(d.c.id.in_(ids)).order_by(d.c.next_attempt_at, d.c.id)).all()
        return [_delivery(r) for r in rows]

    def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Record attempt outcomes in one transaction; rows already delivered or failed stay so."""
        d = t.webhook_deliveries
        with self.write_transaction() as conn:
            for o in outcomes:
                values: dict[str, Any] = {
                    "status": o.status,
                    "next_attempt_at": o.next_attempt_at,
                    "last_status_code": o.status_code,
                    "last_error": o.error,
                    "last_latency_ms": o.latency_ms,
                    "claimed_until": None,
                }
                if o.status == "delivered":
                    values["delivered_at"] = o.at
                conn.execute(update(d).where(and_(d.c.id == o.delivery_id, d.c.status == "pending")).values(**values))

    def list_deliveries(
        self,
        *,
        receiver: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """The delivery log, newest first, optionally filtered."""
        d = t.webhook_deliveries
        query = select(d).order_by(d.c.id.desc()).limit(limit)
        for column, value in ((d.c.receiver, receiver), (d.c.status, status), (d.c.event_id, event_id)):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def delivery_counts(self) -> dict[str, int]:
        """How many outbox rows are pending, delivered and failed."""
        d = t.webhook_deliveries
        with self.engine.connect() as conn:
            found: dict[str, int] = dict(
                conn.execute(select(d.c.status, func.count()).group_by(d.c.status)).tuples().all()
            )
        return {s: int(found.get(s, 0)) for s in DELIVERY_STATUSES}


def upsert_statement(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _row(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "receiver": entry.receiver,
        "event_type": entry.event_type,
        "payload": entry.payload,
        "status": "pending",
        "attempts": 0,
        "created_at": entry.created_at,
        "next_attempt_at": entry.created_at,
    }


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        receiver=row.receiver,
        event_type=row.event_type,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_latency_ms=row.last_latency_ms,
    )
