"""``mlwatch ingest --direct``'s writer process: what it stores, and how its failures reach the command."""

from __future__ import annotations

import os
import signal

import pytest

from monitor.commands.batch_writer import StoreWriter
from monitor.errors import StoreError
from monitor.records import Feature, LabelRecord, PredictionColumns
from monitor.store import Store
from monitor.store.ingest import EncodedBatch, encode_columns

NOW = 1_800_000_000.0


def _columns(ids: range) -> PredictionColumns:
    return PredictionColumns(
        request_ids=[f"r{i}" for i in ids],
        ts=[NOW + i for i in ids],
        features={"x": [float(i) for i in ids]},
        prediction=[i % 2 for i in ids],
    )


def test_the_writer_stores_labels_and_predictions_and_counts_only_new_rows(store: Store, store_url: str) -> None:
    service = store.upsert_service("batch", task="classification", features=(Feature("x"),))
    writer = StoreWriter(store_url)
    try:
        labels = [LabelRecord("r1", 1, NOW + 1)]
        assert writer.write(service, encode_columns(service, _columns(range(100))), labels) == 100
        assert writer.write(service, encode_columns(service, _columns(range(50, 150))), []) == 50
    finally:
        writer.close()
    rows = {p.request_id: p for p in store.recent_predictions(service, limit=1000, since=0)}
    assert len(rows) == 150 and rows["r1"].label == 1 and rows["r149"].features == {"x": 149.0}
    assert sum(b.count for b in store.traffic_stats(service, NOW - 60, NOW + 300, 60)) == 150


def test_a_write_the_store_refuses_is_an_error_with_the_stores_reason_and_the_writer_goes_on(
    store: Store, store_url: str
) -> None:
    service = store.upsert_service("batch", task="classification", features=(Feature("x"),))
    good = encode_columns(service, _columns(range(10)))
    broken = EncodedBatch(service.id, [(*good.rows[0][:11], None)], 1)  # status NULL
    writer = StoreWriter(store_url)
    try:
        with pytest.raises(StoreError, match=r"(?i)IntegrityError|NotNullViolation|null"):
            writer.write(service, broken, [])
        assert writer.write(service, good, []) == 10
    finally:
        writer.close()
    assert store.count_window(service, NOW - 1, NOW + 100) == 10


def test_a_writer_process_that_died_is_an_error_naming_its_exit(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    service = store.upsert_service("batch", task="classification", features=(Feature("x"),))
    writer = StoreWriter(sqlite_url)
    try:
        assert writer.write(service, encode_columns(service, _columns(range(3))), []) == 3
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        with pytest.raises(StoreError, match=r"the ingest writer process ended \(exit code -9\)"):
            writer.write(service, encode_columns(service, _columns(range(3, 6))), [])
    finally:
        writer.close()
        store.close()
