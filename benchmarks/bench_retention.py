"""Retention of one day on a PostgreSQL store of 10M predictions over 30 days: partitions dropped.

The rows go straight into ``predictions`` (and their request ids into
``prediction_request_ids``) with ``INSERT ... SELECT generate_series``, in a database made
for the run and dropped after it; then the same rows are copied into a plain table with
the layout of before partitioning (unique request id, the (service, minute, level) index).
Both tables are vacuumed and checkpointed, so neither timing pays for the load's hint bits
or dirty pages. Timed: ``Store.purge`` with the cut at the end of the oldest day (it drops
that day's partitions), against the ``DELETE ... WHERE`` that purge ran before partitions,
on the plain copy, removing the same rows; then, for information, the release of that day's
request ids, which the worker does after the purge in transactions of 50,000. Peak memory is this
process's resident set (the work is the server's). Target (issue 17): under 1 s.

``MLWATCH_BENCH_RETENTION_ROWS`` sets the size (default 10,000,000); the smoke test uses 50,000.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine, text

from benchmarks.harness import Result, max_rss_mb, timed
from monitor.config import RetentionConfig
from monitor.records import Feature
from monitor.store import Store
from monitor.store.partitions import LABELS, PARTITION_SECONDS, PREDICTIONS, REQUEST_IDS, create_partitions, day_of
from tests.conftest import postgres_base_url

ROWS = 10_000_000
DAYS = 30
_FLAT = "predictions_flat"
_COLUMNS = (
    "service_id, request_id, ts, minute, sample_key, sample_level, features, prediction, latency_ms, "
    "model_version, status"
)


@contextmanager
def dedicated_database() -> Iterator[str]:
    """The URL of a database made for this run, dropped (its connections cut) afterwards."""
    base = postgres_base_url()
    name = f"mlwatch_bench_retention_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def load(conn: Connection, service_id: int, rows: int, first_day: int, days: int) -> None:
    """``rows`` predictions spread evenly over ``days`` days from ``first_day``, straight into the tables."""
    for spec in (PREDICTIONS, LABELS):
        create_partitions(conn, spec, range(first_day, first_day + days))
    start, span = first_day * PARTITION_SECONDS, days * PARTITION_SECONDS
    conn.execute(
        text(
            f"INSERT INTO predictions ({_COLUMNS}) "
            "SELECT :service, 'b' || g, ts, floor(ts / 60)::bigint, random(), 0, :features, '1', 2.0, '1', 'ok' "
            f"FROM (SELECT g, {start} + (g - 0.5) * {span}::float8 / :rows AS ts FROM generate_series(1, :rows) g) s"
        ),
        {"service": service_id, "rows": rows, "features": '{"x": 1.0}'},
    )
    conn.execute(text(f"INSERT INTO {REQUEST_IDS} SELECT service_id, request_id, ts FROM predictions"))


def flat_copy(conn: Connection) -> None:
    """The same rows in a plain table laid out as ``predictions`` was before partitions."""
    conn.execute(text(f"CREATE TABLE {_FLAT} (LIKE predictions INCLUDING DEFAULTS)"))
    conn.execute(text(f"INSERT INTO {_FLAT} SELECT * FROM predictions"))
    conn.execute(text(f"ALTER TABLE {_FLAT} ADD PRIMARY KEY (id)"))
    conn.execute(text(f"ALTER TABLE {_FLAT} ADD UNIQUE (service_id, request_id)"))
    conn.execute(text(f"CREATE INDEX ON {_FLAT} (service_id, minute, sample_level)"))


def settle(url: str) -> None:
    """Vacuum, analyze and checkpoint, outside a transaction, so the timings start even."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table in ("predictions", REQUEST_IDS, _FLAT):
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))
        conn.execute(text("CHECKPOINT"))
    engine.dispose()


def delete_rows(store: Store, cut: float) -> int:
    """Purge's statement before partitions, on the plain copy: the rows older than ``cut``."""
    with store.engine.begin() as conn:
        deleted = conn.execute(
            text(
                f"DELETE FROM {_FLAT} WHERE service_id IN (SELECT id FROM services) AND minute <= :minute AND ts < :cut"
            ),
            {"minute": int(cut // 60), "cut": cut},  # an int, so that the index finds the rows
        )
        return int(deleted.rowcount)


def run(rows: int, days: int = DAYS) -> list[Result]:
    """Both timings on ``rows`` predictions over ``days`` days; the cut ends the oldest day."""
    with dedicated_database() as url:
        store = Store.open(url, migrate=True)
        try:
            service = store.upsert_service("bench", task="classification", features=(Feature("x"),))
            first_day = day_of(time.time()) - days
            with store.engine.begin() as conn:
                load(conn, service.id, rows, first_day, days)
                flat_copy(conn)
            settle(url)
            now, cut = time.time(), (first_day + 1) * PARTITION_SECONDS
            deleted, delete_s = timed(lambda: delete_rows(store, cut))
            purged, purge_s = timed(lambda: store.purge(RetentionConfig(predictions=now - cut), now))
            released, release_s = timed(lambda: store.forget_request_ids(cut))
        finally:
            store.close()
    if not deleted or purged["predictions"] != deleted or released != deleted:
        raise AssertionError(f"of the oldest day, purge removed {purged['predictions']} rows, the DELETE {deleted}")
    peak = max_rss_mb()
    print(
        f"retention of one day ({deleted:,} of {rows:,} predictions): partitions dropped in {purge_s:.3f} s, "
        f"row-by-row DELETE {delete_s:.3f} s, ratio {purge_s / delete_s:.4f}; their request ids released after, "
        f"in transactions of 50,000, in {release_s:.3f} s; peak RSS {peak:.0f} MB"
    )
    return [
        Result(
            f"retention: purge a day of {rows:,} predictions, PostgreSQL partitions (vs row-by-row DELETE)",
            purge_s,
            "s",
            "<= 1",
            delete_s,
            peak,
        ),
        Result("retention: row-by-row DELETE of that day, unpartitioned table", delete_s, "s", "", None, peak),
        Result("retention: release that day's request ids after the purge (vs DELETE)", release_s, "s", "", delete_s),
    ]


def main() -> list[Result]:
    return run(int(os.environ.get("MLWATCH_BENCH_RETENTION_ROWS", ROWS)))


if __name__ == "__main__":
    from benchmarks.harness import report

    raise SystemExit(report(main()))
