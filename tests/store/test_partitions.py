"""Time partitions of predictions and labels: PostgreSQL's layout, and the migration that
makes it out of a store full of rows (a no-op on SQLite, whose layout stays as it was)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from monitor.config import RetentionConfig
from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store
from monitor.store.engine import make_engine
from monitor.store.migrate import upgrade
from monitor.store.partitions import LABELS, PARTITION_SECONDS, PARTITIONS_AHEAD_DAYS, PREDICTIONS, day_of, partitions
from monitor.worker import Worker, WorkerContext, retention_tasks

DAY = PARTITION_SECONDS
NOW = 1_800_000_000.0 + 0.25 * DAY  # a quarter into a UTC day
TODAY = day_of(NOW)


def _service(store: Store) -> Service:
    return store.upsert_service("credit", task="classification", features=(Feature("x"),))


def _record(rid: str, ts: float) -> PredictionRecord:
    return PredictionRecord(request_id=rid, ts=ts, features={"x": 1.0}, prediction=1, latency_ms=2.0)


def _rows(store: Store, table: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def _checksum(rows: list[tuple[object, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _fill_at_0005(url: str) -> None:
    """Rows written as revision 0005 stored them: a service, predictions over ten days, labels."""
    engine = make_engine(url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO services (name, task, features, config, created_at, updated_at) "
                "VALUES ('credit', 'classification', '[{\"name\": \"x\", \"type\": \"numerical\"}]', '{}', 0, 0)"
            )
        )
        predictions = [
            {"rid": f"r{i}", "ts": NOW - i * 7200.0, "minute": int((NOW - i * 7200.0) // 60), "key": (i % 97) / 97}
            for i in range(120)  # ten days, every two hours
        ]
        conn.execute(
            text(
                "INSERT INTO predictions (service_id, request_id, ts, minute, sample_key, sample_level, features, "
                "prediction, latency_ms, model_version, status) "
                "VALUES (1, :rid, :ts, :minute, :key, 0, '{\"x\": 1.0}', '1', 2.0, '1', 'ok')"
            ),
            predictions,
        )
        conn.execute(
            text("INSERT INTO labels (service_id, request_id, label, ts, received_at) VALUES (1, :rid, '1', :ts, :ts)"),
            [{"rid": f"r{i}", "ts": NOW - i * 7200.0 + 60} for i in range(0, 120, 3)],
        )
    engine.dispose()


def test_migrating_a_filled_store_keeps_every_row_and_it_works_on(store_url: str) -> None:
    _fill_at_0005(store_url)
    engine = make_engine(store_url)
    before = Store(engine)
    old = {table: _rows(before, table) for table in ("predictions", "labels")}
    before.close()

    store = Store.open(store_url, migrate=True)
    for table in ("predictions", "labels"):
        rows = _rows(store, table)
        assert (len(rows), _checksum(rows)) == (len(old[table]), _checksum(old[table])), table
    assert (len(old["predictions"]), len(old["labels"])) == (120, 40)
    service = store.get_service("credit")
    assert store.count_window(service, NOW - 10 * DAY, NOW + 1) == 120
    again = store.add_predictions(service, [_record("r5", NOW), _record("new", NOW)])  # r5 was stored before
    assert (again.accepted, again.duplicates) == (1, 1)
    store.add_labels(service, [LabelRecord("r3", 0, NOW - 5 * DAY)])  # replaces r3's label, on another day
    labelled = {p.request_id: p for p in store.sample_window(service, NOW - 2 * DAY, NOW + 1, 1000)}
    assert (labelled["r3"].label, labelled["r6"].label, labelled["r1"].has_label) == (0, 1, False)
    assert [r[3] for r in _rows(store, "labels") if r[2] == "r3"] == ["0"]  # one label row for r3
    assert _rows(store, "predictions")[-1][0] > max(r[0] for r in old["predictions"])  # ids go on from the old ones
    store.close()


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    store = Store.open(postgres_url, migrate=True)
    yield store
    store.close()


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.mark.postgres
def test_migration_creates_partitions_for_today_and_the_days_ahead(pg_store: Store) -> None:
    from time import time

    with pg_store.engine.connect() as conn:
        for spec in (PREDICTIONS, LABELS):
            today = day_of(time())
            assert set(range(today, today + PARTITIONS_AHEAD_DAYS + 1)) <= set(partitions(conn, spec))


@pytest.mark.postgres
def test_a_request_id_is_stored_once_even_when_resent_with_a_time_on_another_day(pg_store: Store) -> None:
    service = _service(pg_store)
    pg_store.create_partitions_ahead(NOW - 3 * DAY)
    assert pg_store.add_predictions(service, [_record("a", NOW), _record("b", NOW)]).accepted == 2
    again = pg_store.add_predictions(service, [_record("a", NOW - 2 * DAY), _record("c", NOW - 2 * DAY)])
    assert (again.accepted, again.duplicates) == (1, 1)
    assert pg_store.count_window(service, NOW - 3 * DAY, NOW + 1) == 3


@pytest.mark.postgres
def test_rows_of_days_without_a_partition_wait_in_the_default_one_and_move_when_it_is_made(pg_store: Store) -> None:
    service = _service(pg_store)
    late, future = NOW - 400 * DAY, NOW + 30 * DAY  # NOW is past the days the migration made
    pg_store.add_predictions(service, [_record("late", late), _record("future", future), _record("now", NOW)])
    pg_store.add_labels(service, [LabelRecord("future", 1, future)])
    assert (_count(pg_store, PREDICTIONS.default), _count(pg_store, LABELS.default)) == (3, 1)
    created = pg_store.create_partitions_ahead(NOW + 25 * DAY)  # the worker, 25 days on: reaches the future row's day
    assert PREDICTIONS.name(day_of(future)) in created and LABELS.name(day_of(future)) in created
    assert pg_store.create_partitions_ahead(NOW + 25 * DAY) == []  # already made
    assert _count(pg_store, PREDICTIONS.name(day_of(future))) == 1
    assert (_count(pg_store, PREDICTIONS.default), _count(pg_store, LABELS.default)) == (2, 0)
    assert pg_store.count_window(service, late - 1, future + 1) == 3


@pytest.mark.postgres
def test_two_workers_creating_partitions_at_once_make_each_once(pg_store: Store) -> None:
    start, errors = threading.Barrier(2), []

    def create() -> list[str]:
        start.wait()
        try:
            return pg_store.create_partitions_ahead(NOW + 100 * DAY)
        except Exception as exc:  # the outcome under test: none
            errors.append(exc)
            return []

    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(create())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    made = sorted(name for result in results for name in result)
    assert len(made) == 2 * (PARTITIONS_AHEAD_DAYS + 1) == len(set(made))  # both tables, each day once


@pytest.mark.postgres
def test_retention_drops_whole_days_and_deletes_rows_only_in_the_day_of_the_cut(pg_store: Store) -> None:
    service = _service(pg_store)
    pg_store.create_partitions_ahead(NOW - 5 * DAY)
    days = [TODAY - 5, TODAY - 4, TODAY - 3]
    records = [_record(f"d{day}-{h}", day * DAY + h * 3600 + 1) for day in days for h in range(24)]
    pg_store.add_predictions(service, records)
    pg_store.add_labels(service, [LabelRecord(r.request_id, 1, r.ts) for r in records])
    cut = (TODAY - 3) * DAY + 6 * 3600  # six hours into the third day
    retention = RetentionConfig(predictions=NOW - cut)
    deleted = pg_store.purge(retention, NOW)
    assert (deleted["predictions"], deleted["labels"]) == (48 + 6, 48 + 6)
    with pg_store.engine.connect() as conn:
        for spec in (PREDICTIONS, LABELS):
            assert not {TODAY - 5, TODAY - 4} & set(partitions(conn, spec))
            assert _count(pg_store, spec.name(TODAY - 3)) == 18
    assert pg_store.count_window(service, 0, NOW + 1) == 18
    # the dropped rows' request ids are held until they are released, then a re-sent old row is stored anew
    assert pg_store.add_predictions(service, [_record(f"d{TODAY - 5}-0", NOW)]).accepted == 0
    assert pg_store.forget_request_ids(cut, per_transaction=20) == 48 + 6
    assert pg_store.add_predictions(service, [_record(f"d{TODAY - 5}-0", NOW)]).accepted == 1
    assert pg_store.add_predictions(service, [_record(f"d{TODAY - 3}-23", NOW)]).accepted == 0


@pytest.mark.postgres
def test_reading_a_window_scans_only_its_days_partitions_through_the_index(pg_store: Store) -> None:
    service = _service(pg_store)
    pg_store.create_partitions_ahead(NOW - 5 * DAY)
    first, last = int(NOW // 60) - 30, int(NOW // 60) + 30
    with pg_store.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # a near-empty table would otherwise be scanned whole
        plan = "\n".join(
            conn.execute(
                text("EXPLAIN SELECT count(*) FROM predictions WHERE service_id = :s AND minute > :a AND minute < :b"),
                {"s": service.id, "a": first, "b": last},
            ).scalars()
        )
    assert PREDICTIONS.name(TODAY) in plan and "Index Only Scan" in plan, plan
    assert PREDICTIONS.name(TODAY - 1) not in plan and PREDICTIONS.default not in plan, plan


def test_the_worker_creates_partitions_before_it_purges(store: Store) -> None:
    from monitor.config import Settings

    ctx = WorkerContext(Settings(), store, clock=lambda: NOW)
    assert Worker(ctx, retention_tasks(ctx)).tick() == ["partitions", "retention"]
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            assert set(range(TODAY, TODAY + PARTITIONS_AHEAD_DAYS + 1)) <= set(partitions(conn, PREDICTIONS))
