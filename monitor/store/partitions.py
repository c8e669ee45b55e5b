"""How predictions and labels are laid out per backend: one table each on SQLite, daily
range partitions on PostgreSQL. Every difference between the two lives here, behind
``layout(dialect)``.

On PostgreSQL ``predictions`` is partitioned by ``minute`` and ``labels`` by ``ts``, one
partition per UTC day (``PARTITION_SECONDS``), named ``<table>_pYYYYMMDD``, plus
``<table>_default`` for rows outside the days created: a late or far-future row is stored,
never refused. The worker creates partitions ``PARTITIONS_AHEAD_DAYS`` ahead, and
retention drops the partitions wholly older than its cut instead of deleting their rows
one by one (10M rows: see ``benchmarks/bench_retention.py``).

PostgreSQL requires the partition key in every unique key of a partitioned table, so
``(service_id, request_id)`` can no longer be unique on the partitions themselves:

- predictions: a request id is claimed in ``prediction_request_ids``, a plain table whose
  primary key is ``(service_id, request_id)``, in the transaction that stores the row
  (``monitor.store.ingest``). Retention releases the claims of the rows it removed after
  the drop, in bounded transactions of their own: deleting a day of claims (333k rows) one
  by one took most of the 8.7 s a purge took when it was part of it. Until then, a re-sent
  row past retention counts as a duplicate, which it would have been deleted as anyway;
- labels: last one wins, so a batch takes a per-service transaction lock, deletes the labels
  it replaces and inserts (label batches are small and far fewer than predictions).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from monitor.store import schema as t
from monitor.store.engine import upsert_insert

log = logging.getLogger(__name__)

PARTITION_SECONDS = 86400
"""The width of a partition: one UTC day, the unit retention is configured in."""
PARTITIONS_AHEAD_DAYS = 7
"""Days past today whose partitions the worker keeps created (a week of worker downtime)."""
REQUEST_IDS = "prediction_request_ids"
"""PostgreSQL: the request ids of stored predictions, unique per service across partitions."""
LOCK_TIMEOUT = "5s"
"""How long partition DDL waits for ingest's locks on a table before giving up until the next tick."""


@dataclass(frozen=True)
class Partitioned:
    """A table partitioned by day on one column, whose values per day are ``per_day``."""

    table: str
    key: str
    per_day: int

    def bounds(self, day: int) -> tuple[int, int]:
        """The key range ``[from, to)`` of the partition of ``day`` (days since the epoch)."""
        return day * self.per_day, (day + 1) * self.per_day

    def name(self, day: int) -> str:
        """The partition of ``day``'s table name, e.g. ``predictions_p20261202``."""
        date = _date(day)
        return f"{self.table}_p{date.year:04d}{date.month:02d}{date.day:02d}"

    @property
    def default(self) -> str:
        """The partition that takes rows outside every day created."""
        return f"{self.table}_default"


PREDICTIONS = Partitioned("predictions", "minute", PARTITION_SECONDS // 60)
LABELS = Partitioned("labels", "ts", PARTITION_SECONDS)
TABLES = (PREDICTIONS, LABELS)


def day_of(ts: float) -> int:
    """The day (since the epoch, UTC) that holds the instant ``ts``."""
    return int(ts // PARTITION_SECONDS)


def _date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


def _day_of_name(spec: Partitioned, name: str) -> int | None:
    suffix = name.removeprefix(f"{spec.table}_p")
    if suffix == name or not suffix.isdigit():
        return None
    return (dt.date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:8])) - dt.date(1970, 1, 1)).days


class Layout:
    """SQLite's layout: one table each, rows deleted by condition, labels upserted."""

    request_id_table = "predictions"
    """The table whose ``(service_id, request_id)`` say which predictions are stored."""

    def create_ahead(self, conn: Connection, now: float) -> list[str]:
        """Create the partitions of today and the days ahead; returns the names created."""
        return []

    def drop_before(self, conn: Connection, cut: float) -> dict[str, int]:
        """Drop the partitions wholly older than ``cut``; rows they held, per table."""
        return {}

    def forget_request_ids(self, conn: Connection, cut: float, limit: int) -> int:
        """Release at most ``limit`` request ids of predictions older than ``cut``; how many."""
        return 0

    def write_labels(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Store label rows, replacing any label stored for the same request id."""
        stmt = upsert_insert(conn.dialect.name, t.labels)
        stmt = stmt.on_conflict_do_update(
            index_elements=["service_id", "request_id"],
            set_={"label": stmt.excluded.label, "ts": stmt.excluded.ts, "received_at": stmt.excluded.received_at},
        )
        conn.execute(stmt, list(rows))


class PartitionedLayout(Layout):
    """PostgreSQL's layout: daily range partitions, a request-id table, whole-day drops."""

    request_id_table = REQUEST_IDS

    def create_ahead(self, conn: Connection, now: float) -> list[str]:
        """Create the partitions of today and ``PARTITIONS_AHEAD_DAYS`` after, under a lock
        that makes a second worker find them made (and rows of those days that waited in the
        default partition move into theirs)."""
        _lock(conn)
        today = day_of(now)
        return [
            name
            for spec in TABLES
            for name in create_partitions(conn, spec, range(today, today + PARTITIONS_AHEAD_DAYS + 1))
        ]

    def drop_before(self, conn: Connection, cut: float) -> dict[str, int]:
        """Count and drop every day partition that ends at or before ``cut``."""
        _lock(conn)
        dropped = {}
        for spec in TABLES:
            old = [name for day, name in partitions(conn, spec).items() if (day + 1) * PARTITION_SECONDS <= cut]
            dropped[spec.table] = sum(_drop(conn, name) for name in old)
        return dropped

    def forget_request_ids(self, conn: Connection, cut: float, limit: int) -> int:
        """Delete at most ``limit`` claims of predictions older than ``cut``, by the claims' time index."""
        released = conn.execute(
            text(
                f"DELETE FROM {REQUEST_IDS} WHERE ctid IN (SELECT ctid FROM {REQUEST_IDS} WHERE ts < :cut LIMIT :limit)"
            ),
            {"cut": cut, "limit": limit},
        )
        return int(released.rowcount)

    def write_labels(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Delete the labels these rows replace and insert them, one batch per service at a time."""
        latest = {(r["service_id"], r["request_id"]): r for r in rows}  # last one wins within the batch too
        for service_id in sorted({service for service, _ in latest}):
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": f"labels:{service_id}"}
            )
            ids = [rid for service, rid in latest if service == service_id]
            conn.execute(
                text("DELETE FROM labels WHERE service_id = :service AND request_id = ANY(:ids)"),
                {"service": service_id, "ids": ids},
            )
        conn.execute(t.labels.insert(), list(latest.values()))


_LAYOUTS: dict[str, Layout] = {"sqlite": Layout(), "postgresql": PartitionedLayout()}


def layout(dialect: str) -> Layout:
    """The layout of the backend named ``dialect`` (``conn.dialect.name``)."""
    return _LAYOUTS[dialect]


def _lock(conn: Connection) -> None:
    """Serialize partition DDL across workers, and bound its wait for ingest's table locks."""
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('mlwatch:partitions', 0))"))


def partitions(conn: Connection, spec: Partitioned) -> dict[int, str]:
    """The day partitions of ``spec``'s table, by day."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": spec.table},
    ).scalars()
    found = ((_day_of_name(spec, name), name) for name in names)
    return {day: name for day, name in found if day is not None}


def create_partitions(conn: Connection, spec: Partitioned, days: Sequence[int] | range) -> list[str]:
    """Create the missing partitions of ``days`` (and the default one); returns those created.

    A day whose rows already wait in the default partition gets them moved into its own:
    PostgreSQL refuses a partition whose range the default partition holds rows of.
    """
    conn.execute(text(f"CREATE TABLE IF NOT EXISTS {spec.default} PARTITION OF {spec.table} DEFAULT"))
    existing = partitions(conn, spec)
    created = []
    for day in days:
        if day in existing:
            continue
        low, high = spec.bounds(day)
        name = spec.name(day)
        waiting = conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM {spec.default} WHERE {spec.key} >= {low} AND {spec.key} < {high})")
        ).scalar_one()
        if waiting:
            _attach_from_default(conn, spec, name, low, high)
        else:
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF {spec.table} FOR VALUES FROM ({low}) TO ({high})"))
        created.append(name)
    return created


def _attach_from_default(conn: Connection, spec: Partitioned, name: str, low: int, high: int) -> None:
    conn.execute(text(f"CREATE TABLE {name} (LIKE {spec.table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {spec.default} WHERE {spec.key} >= {low} AND {spec.key} < {high} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        )
    )
    conn.execute(text(f"ALTER TABLE {spec.table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"))
    log.info("partition %s created with the rows of its day that were in %s", name, spec.default)


def _drop(conn: Connection, name: str) -> int:
    rows = int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
    conn.execute(text(f"DROP TABLE {name}"))
    return rows


def migration_filter(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """An Alembic ``include_object`` that leaves out what PostgreSQL's layout has beyond
    ``schema.py`` (partitions, the request-id table) or instead of it (the unique keys the
    request-id table and the label lock replace), so autogenerate compares the rest."""
    if dialect != "postgresql":
        return lambda *_: True
    replaced = {
        "uq_predictions_service_id_request_id",
        "uq_labels_service_id_request_id",
        "ix_labels_service_id_request_id",
    }

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return not (reflected and name is not None and _is_layout_table(name))
        if type_ in ("unique_constraint", "index") and name in replaced:
            return False
        table = getattr(obj, "table", None)
        return table is None or not _is_layout_table(table.name)

    return include


def _is_layout_table(name: str) -> bool:
    return name == REQUEST_IDS or any(name == s.default or _day_of_name(s, name) is not None for s in TABLES)
