"""The webhook outbox: rows written with the change they announce, claimed and delivered by workers.

Several workers may deliver at once. A worker claims due rows by setting a lease
(``claimed_until``) in a short write transaction: on PostgreSQL the rows are selected
``FOR UPDATE SKIP LOCKED`` so workers never wait on each other; on SQLite the transaction
is ``BEGIN IMMEDIATE``, which serializes claims. A worker that dies mid-delivery leaves
its lease to expire and the rows are delivered again: at least once, same ``event_id``.

Every attempt also gets a row in ``webhook_attempts`` (its number, start, status code,
latency and error), written in the transaction that records its outcome on the delivery,
so the log shows two 503s before a 200 rather than only the 200.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.errors import NotFound
from monitor.store import schema as t
from monitor.store.engine import write_transaction

DELIVERY_STATUSES = ("pending", "delivered", "failed")
ATTEMPTS_LISTED = 20
"""Attempts shown per delivery in a list (the newest); one delivery shows all of them."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One event for one receiver, ready to be written to the outbox."""

    event_id: str
    receiver: str
    event_type: str
    payload: str  # the body exactly as it will be posted
    created_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at delivering a row: when it started and what came back."""

    attempt: int  # 1 for the first try
    started_at: float
    status_code: int | None  # None when no answer came (timeout, refused address, connection error)
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row with its delivery log: attempts, last status, latency and error.

    ``attempts`` counts the tries; ``attempt_log`` holds them, oldest first (empty on claimed
    rows, which only need the count; at most ``ATTEMPTS_LISTED`` in a list).
    """

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
    attempt_log: tuple[Attempt, ...] = ()


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
    attempt: int | None = None  # the claimed row's attempt count; None: the row's count now
    started_at: float | None = None  # None: ``at``


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
        """Record attempt outcomes and log each attempt, in one transaction; rows delivered or failed stay so.

        A late outcome (its lease ran out and another worker finished the row) still has its
        attempt logged: the request was made. One for a row deleted meanwhile is dropped.
        """
        d = t.webhook_deliveries
        with self.write_transaction() as conn:
            counts = _attempt_counts(conn, [o.delivery_id for o in outcomes])
            for o in outcomes:
                conn.execute(
                    update(d).where(and_(d.c.id == o.delivery_id, d.c.status == "pending")).values(**_values(o))
                )
            rows = [_attempt_row(o, counts) for o in outcomes if o.delivery_id in counts]
            if rows:
                stmt = upsert_statement(conn, t.webhook_attempts).on_conflict_do_nothing()
                conn.execute(stmt, rows)

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
            rows = conn.execute(query).all()
            logs = _attempt_logs(conn, [r.id for r in rows], newest=ATTEMPTS_LISTED)
        return [_delivery(r, logs.get(r.id, ())) for r in rows]

    def get_delivery(self, delivery_id: int) -> Delivery:
        """One delivery with every attempt; NotFound if there is no such row."""
        d = t.webhook_deliveries
        with self.engine.connect() as conn:
            row = conn.execute(select(d).where(d.c.id == delivery_id)).first()
            if row is None:
                raise NotFound(f"unknown delivery {delivery_id}; list deliveries with GET /v1/webhooks/deliveries")
            logs = _attempt_logs(conn, [delivery_id])
        return _delivery(row, logs.get(delivery_id, ()))

    def purge_delivery_log(self, before: float) -> dict[str, int]:
        """Delete the log's rows older than ``before``; returns how many per table.

        Deliveries go once finished (delivered or failed), with all their attempts; pending
        ones stay until done. Attempts started before ``before`` go in any case. The worker
        calls this hourly (``monitor.webhooks.tasks``).
        """
        d, a = t.webhook_deliveries, t.webhook_attempts
        done = select(d.c.id).where(d.c.status != "pending", d.c.created_at < before)
        with self.write_transaction() as conn:
            attempts = conn.execute(delete(a).where(or_(a.c.delivery_id.in_(done), a.c.started_at < before))).rowcount
            deliveries = conn.execute(delete(d).where(d.c.id.in_(done.scalar_subquery()))).rowcount
        return {"webhook_deliveries": deliveries, "webhook_attempts": attempts}

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


def _delivery(row: Any, attempt_log: tuple[Attempt, ...] = ()) -> Delivery:
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
        attempt_log=attempt_log,
    )


def _values(o: AttemptOutcome) -> dict[str, Any]:
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
    return values


def _attempt_counts(conn: Connection, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    d = t.webhook_deliveries
    return dict(conn.execute(select(d.c.id, d.c.attempts).where(d.c.id.in_(ids))).tuples().all())


def _attempt_row(o: AttemptOutcome, counts: dict[int, int]) -> dict[str, Any]:
    error = o.error if o.error is None or len(o.error) <= t.ATTEMPT_ERROR_CHARS else o.error[: t.ATTEMPT_ERROR_CHARS]
    return {
        "delivery_id": o.delivery_id,
        "attempt": o.attempt if o.attempt is not None else counts[o.delivery_id],
        "started_at": o.at if o.started_at is None else o.started_at,
        "status_code": o.status_code,
        "latency_ms": o.latency_ms,
        "error": error,
    }


def _attempt_logs(conn: Connection, ids: list[int], newest: int | None = None) -> dict[int, tuple[Attempt, ...]]:
    """The attempts of deliveries ``ids``, oldest first; only the ``newest`` of each when given."""
    if not ids:
        return {}
    a = t.webhook_attempts
    query = select(a).where(a.c.delivery_id.in_(ids))
    if newest is not None:
        rank = func.row_number().over(partition_by=a.c.delivery_id, order_by=a.c.attempt.desc()).label("rank")
        ranked = select(a, rank).where(a.c.delivery_id.in_(ids)).subquery()
        query = select(*(ranked.c[c.name] for c in a.columns)).where(ranked.c.rank <= newest)
    logs: dict[int, list[Attempt]] = {}
    for r in conn.execute(query):
        logs.setdefault(r.delivery_id, []).append(
            Attempt(r.attempt, r.started_at, r.status_code, r.latency_ms, r.error)
        )
    return {k: tuple(sorted(v, key=lambda x: x.attempt)) for k, v in logs.items()}
