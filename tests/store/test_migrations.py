"""The Alembic chain creates exactly the schema the code declares, on both backends."""

from __future__ import annotations

import time

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from monitor.errors import StoreError
from monitor.records import Feature, PredictionRecord
from monitor.store import Store
from monitor.store.engine import make_engine
from monitor.store.migrate import alembic_config, current_revision, head_revision, upgrade
from monitor.store.partitions import migration_filter
from monitor.store.schema import metadata, sample_level

NOW = time.time()


def test_migrations_produce_the_declared_schema(store_url: str) -> None:
    store = Store.open(store_url, migrate=True)
    with store.engine.connect() as conn:
        opts = {"compare_type": True, "include_object": migration_filter(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    store.close()
    assert diff == []


def test_migration_chain_has_a_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def test_embedded_store_migrates_itself_on_open(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    assert current_revision(store.engine) == head_revision()
    store.close()


def test_unmigrated_postgres_store_asks_for_db_upgrade(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="run `mlwatch db upgrade`"):
        Store.open(postgres_url)
    engine = make_engine(postgres_url)
    assert current_revision(engine) is None
    engine.dispose()


def test_predictions_stored_before_the_minute_index_keep_their_times_and_sample(store_url: str) -> None:
    """0002 fills ``minute`` and ``sample_level`` from each row's ts and sample_key, then drops ``hour``."""
    engine = make_engine(store_url)
    upgrade(engine, "0001")
    keys = [0.9, 0.5, 0.4999, 0.25, 0.1, 0.003, 2.0**-40, 0.0]
    times = [NOW - 3600 * i - 61 for i in range(len(keys))]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO services (name, task, features, config, created_at, updated_at) "
                "VALUES ('old', 'classification', '[{\"name\": \"x\", \"type\": \"numeric\"}]', '{}', 0, 0)"
            )
        )
        for i, (ts, key) in enumerate(zip(times, keys, strict=True)):
            conn.execute(
                text(
                    "INSERT INTO predictions (service_id, request_id, ts, hour, sample_key, features, status) "
                    "VALUES (1, :rid, :ts, :hour, :key, '{\"x\": 1.0}', 'ok')"
                ),
                {"rid": f"r{i}", "ts": ts, "hour": int(ts // 3600), "key": key},
            )
    engine.dispose()

    store = Store.open(store_url, migrate=True)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT ts, minute, sample_key, sample_level FROM predictions ORDER BY id")).all()
    assert [r.minute for r in rows] == [int(ts // 60) for ts in times]
    assert [r.sample_level for r in rows] == [sample_level(key) for key in keys] == [0, 0, 1, 1, 3, 8, 39, 64]
    service = store.get_service("old")
    assert store.count_window(service, times[-1], NOW) == len(keys)
    assert store.last_prediction_at(service) == times[0]
    assert {p.request_id for p in store.sample_window(service, times[-1], NOW, 4)} == {"r7", "r6", "r5", "r4"}
    store.close()


def test_the_minute_index_migration_can_be_undone_and_redone(store_url: str) -> None:
    store = Store.open(store_url, migrate=True)
    service = store.upsert_service("svc", task="classification", features=(Feature("x"),))
    times = [NOW - 5000 * i for i in range(6)]
    records = [
        PredictionRecord(request_id=f"r{i}", ts=ts, features={"x": 1.0}, prediction=1) for i, ts in enumerate(times)
    ]
    store.add_predictions(service, records)
    store.close()

    engine = make_engine(store_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with engine.connect() as conn:
        hours = conn.execute(text("SELECT hour FROM predictions ORDER BY id")).scalars().all()
    assert hours == [int(ts // 3600) for ts in times]
    upgrade(engine)
    engine.dispose()

    store = Store.open(store_url, migrate=True)
    assert store.count_window(store.get_service("svc"), min(times), NOW + 1) == len(times)
    store.close()
