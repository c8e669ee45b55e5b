"""The store's contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import select

from monitor.config import RetentionConfig
from monitor.errors import NotFound, ValidationFailed
from monitor.records import Feature, HostSample, LabelRecord, PredictionColumns, PredictionRecord, Service
from monitor.store import Store
from monitor.store import schema as t

NOW = 1_800_000_000.0  # a fixed instant keeps buckets deterministic


def _service(store: Store, name: str = "credit") -> Service:
    return store.upsert_service(name, task="classification", features=(Feature("age"), Feature("city", "categorical")))


def _record(i: int, ts: float = NOW, **overrides: object) -> PredictionRecord:
    values: dict[str, object] = {
        "request_id": f"r{i}",
        "ts": ts,
        "features": {"age": 20 + i % 50, "city": "paris" if i % 2 else "lyon"},
        "prediction": i % 2,
        "probabilities": [0.3, 0.7],
        "latency_ms": 1.0 + i % 10,
        "model_version": "1",
        "status": "ok",
    }
    values.update(overrides)
    return PredictionRecord(**values)  # type: ignore[arg-type]


def test_registering_a_service_twice_updates_it_in_place(store: Store) -> None:
    first = _service(store)
    second = store.upsert_service("credit", task="regression", target="amount")
    assert second.id == first.id
    assert (second.task, second.target, second.features) == ("regression", "amount", ())
    assert [s.name for s in store.list_services()] == ["credit"]


def test_unknown_service_error_does_not_list_other_services(store: Store) -> None:
    _service(store)
    with pytest.raises(NotFound, match=r"^unknown service 'nope'; list services with GET /v1/services") as found:
        store.get_service("nope")
    assert "credit" not in str(found.value)


def test_resending_a_batch_does_not_duplicate_rows(store: Store) -> None:
    service = _service(store)
    batch = [_record(i) for i in range(50)]
    assert store.add_predictions(service, batch).accepted == 50
    again = store.add_predictions(service, [*batch[:10], _record(99)])
    assert (again.accepted, again.duplicates) == (1, 10)
    assert store.count_window(service, NOW - 1, NOW + 1) == 51
    assert sum(b.count for b in store.traffic_stats(service, NOW - 60, NOW + 60, 60)) == 51


def _columns(records: list[PredictionRecord]) -> PredictionColumns:
    names = list(records[0].features)
    return PredictionColumns(
        request_ids=[r.request_id for r in records],
        ts=[r.ts for r in records],
        features={name: [r.features.get(name) for r in records] for name in names},
        prediction=[r.prediction for r in records],
        latency_ms=[r.latency_ms for r in records],
        model_version=[r.model_version for r in records],
    )


def test_a_batch_in_columns_is_stored_as_the_same_records_would_be(store: Store) -> None:
    """``add_prediction_columns`` (``mlwatch ingest``'s bulk path) against ``add_predictions``:
    the same rows read back, the same rollups, re-sent ids skipped, a repeated id kept once."""
    by_records, by_columns = _service(store, "records"), _service(store, "columns")
    records = [
        _record(i, ts=NOW + i, probabilities=None, latency_ms=None if i % 7 == 0 else 1.0 + i % 10) for i in range(120)
    ]
    records[5] = _record(
        5, ts=NOW + 5, features={"age": None, "city": 'x\u00e9"y'}, prediction=None, probabilities=None
    )
    assert store.add_predictions(by_records, records).accepted == 120
    assert store.add_prediction_columns(by_columns, _columns(records)).accepted == 120
    again = store.add_prediction_columns(
        by_columns, _columns([*records[:10], _record(500, ts=NOW), _record(500, ts=NOW)])
    )
    store.add_predictions(by_records, [_record(500, ts=NOW, probabilities=None)])
    assert (again.accepted, again.duplicates) == (1, 11)

    def stored(service: Service) -> list[tuple[object, ...]]:
        rows = store.sample_window(service, NOW - 1, NOW + 200, 1000)
        return sorted(
            (p.request_id, p.ts, p.features, p.prediction, p.latency_ms, p.model_version, p.status) for p in rows
        )

    assert stored(by_columns) == stored(by_records) and len(stored(by_columns)) == 121
    traffic = [store.traffic_stats(s, NOW - 60, NOW + 240, 60, by_version=True) for s in (by_records, by_columns)]
    assert traffic[0] == traffic[1] and sum(b.count for b in traffic[1]) == 121


def test_a_batch_in_columns_that_no_backend_can_store_is_refused_naming_the_row(store: Store) -> None:
    service = _service(store)
    records = [_record(i) for i in range(20)]
    records[13] = _record(13, model_version="v\x001")
    with pytest.raises(ValidationFailed, match=r"^records\[13\]\.model_version"):
        store.add_prediction_columns(service, _columns(records))
    assert store.count_window(service, NOW - 1, NOW + 1) == 0
    with pytest.raises(ValueError, match="column ts has 19 values for 20 request ids"):
        PredictionColumns([r.request_id for r in records], [NOW] * 19, {})


def test_a_batch_that_fails_midway_stores_nothing(store: Store) -> None:
    service = _service(store)
    store.add_predictions(service, [_record(0)])
    bad = [_record(1), _record(2, status=None)]  # NOT NULL violation on the second row
    with pytest.raises(Exception, match=r"(?i)null|constraint"):
        store.add_predictions(service, bad)
    assert store.count_window(service, NOW - 1, NOW + 1) == 1
    assert sum(b.count for b in store.traffic_stats(service, NOW - 60, NOW + 60, 60)) == 1


def test_traffic_stats_give_percentiles_errors_and_versions_per_bucket(store: Store) -> None:
    service = _service(store)
    latencies = [float(x) for x in range(1, 101)]  # 1..100 ms
    records = [_record(i, ts=NOW + i % 60, latency_ms=lat) for i, lat in enumerate(latencies)]
    records += [_record(1000 + i, ts=NOW + 5, status="error", model_version="2", latency_ms=None) for i in range(4)]
    store.add_predictions(service, records)
    (bucket,) = store.traffic_stats(service, NOW, NOW + 60, 60)
    assert (bucket.count, bucket.errors) == (104, 4)
    assert bucket.latency_mean_ms == pytest.approx(50.5)
    assert bucket.latency_p50_ms == pytest.approx(50, rel=0.13)  # histogram buckets are 26% wide
    assert bucket.latency_p95_ms == pytest.approx(95, rel=0.13)
    assert bucket.latency_p99_ms == pytest.approx(99, rel=0.13)
    by_version = store.traffic_stats(service, NOW, NOW + 60, 60, by_version=True)
    assert {(b.model_version, b.count, b.errors) for b in by_version} == {("1", 100, 0), ("2", 4, 4)}


def test_late_labels_join_by_request_id_and_resending_replaces(store: Store) -> None:
    service = _service(store)
    store.add_predictions(service, [_record(i) for i in range(3)])
    store.add_labels(service, [LabelRecord("r0", 1, NOW + 86400), LabelRecord("r1", 0, NOW + 86400)])
    store.add_labels(service, [LabelRecord("r1", 1, NOW + 90000)])  # corrected label
    store.add_labels(service, [LabelRecord("unknown-yet", 1, NOW)])  # label before its prediction
    rows = {p.request_id: p for p in store.sample_window(service, NOW - 1, NOW + 1, 10)}
    assert (rows["r0"].label, rows["r1"].label, rows["r2"].has_label) == (1, 1, False)
    with store.engine.connect() as conn:
        assert conn.execute(select(t.labels.c.request_id)).scalars().all().count("r1") == 1


def test_window_sample_is_bounded_and_uniform_over_the_window(store: Store) -> None:
    service = _service(store)
    rng = random.Random(7)
    records = [_record(i, ts=NOW + rng.uniform(0, 7200)) for i in range(4000)]
    store.add_predictions(service, records)
    sample = store.sample_window(service, NOW, NOW + 7200, 400)
    assert len(sample) == 400
    assert len({p.request_id for p in sample}) == 400
    first_hour = sum(1 for p in sample if p.ts < NOW + 3600)
    assert 140 < first_hour < 260  # both halves of the window are represented
    assert all(NOW <= p.ts < NOW + 7200 for p in sample)
    assert store.sample_window(service, NOW + 10_000, NOW + 20_000, 400) == []


def test_host_samples_round_trip_by_host_and_kind(store: Store) -> None:
    store.add_host_samples("gpu-1", [HostSample(NOW, "host", "", {"cpu_percent": 12.5})])
    store.add_host_samples("gpu-1", [HostSample(NOW + 1, "gpu", "0", {"utilization_percent": 80.0})])
    store.add_host_samples("cpu-2", [HostSample(NOW, "host", "", {"cpu_percent": 3.0})])
    gpu = store.host_samples(NOW - 1, NOW + 10, host="gpu-1", kind="gpu")
    assert gpu == [("gpu-1", HostSample(NOW + 1, "gpu", "0", {"utilization_percent": 80.0}))]
    assert len(store.host_samples(NOW - 1, NOW + 10)) == 3


def test_tokens_are_stored_hashed_and_can_be_revoked(store: Store) -> None:
    token = store.create_token("operator", "ci")
    assert store.token_role(token) == "operator"
    with store.engine.connect() as conn:
        stored = conn.execute(select(t.api_tokens.c.token_hash)).scalars().all()
    assert token not in stored and len(stored[0]) == 64
    assert store.revoke_token(token)
    assert store.token_role(token) is None
    with pytest.raises(ValueError, match="unknown role 'root'"):
        store.create_token("root")


def test_audit_log_records_who_did_what_newest_first(store: Store) -> None:
    store.audit("alice", "model.promote", "credit", {"version": "3"})
    store.audit("bob", "alert.ack", "42")
    entries = store.audit_entries()
    assert [(e.actor, e.action) for e in entries] == [("bob", "alert.ack"), ("alice", "model.promote")]
    assert store.audit_entries(action="model.promote")[0].details == {"version": "3"}


def test_purge_removes_only_rows_past_retention(store: Store) -> None:
    service = _service(store)
    now = time.time()
    store.add_predictions(service, [_record(0, ts=now - 40 * 86400), _record(1, ts=now - 3600)])
    store.add_labels(service, [LabelRecord("r0", 1, now - 40 * 86400)])
    store.add_host_samples("h", [HostSample(now - 10 * 86400, "host", "", {"cpu_percent": 1.0})])
    deleted = store.purge(RetentionConfig(), now)
    assert (deleted["predictions"], deleted["labels"], deleted["host_samples"]) == (1, 1, 1)
    assert store.count_window(service, now - 50 * 86400, now) == 1


def test_time_ranges_of_any_length_can_be_counted_and_sampled(store: Store) -> None:
    service = _service(store)
    store.add_predictions(service, [_record(i, ts=NOW - i * 86400 * 30) for i in range(24)])  # two years
    assert store.count_window(service, 0, NOW + 1) == 24
    assert len(store.sample_window(service, 0, NOW + 1, 10)) == 10


def test_concurrent_batches_into_the_same_minutes_all_land(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    service = _service(store)

    def write(writer: int) -> int:
        total = 0
        for batch in range(8):  # every batch touches the same minutes, in a different order
            records = [
                _record(writer * 10_000 + batch * 100 + i, ts=NOW + (i * (writer + 1)) % 300) for i in range(100)
            ]
            total += store.add_predictions(service, records).accepted
        return total

    with ThreadPoolExecutor(4) as pool:
        accepted = sum(pool.map(write, range(4)))
    assert accepted == 4 * 8 * 100
    assert sum(b.count for b in store.traffic_stats(service, NOW - 60, NOW + 360, 60)) == accepted


def test_a_failing_batch_among_concurrent_ones_fails_alone(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    service = _service(store)

    def write(writer: int) -> str:
        records = [_record(writer * 1000 + i) for i in range(50)]
        if writer % 3 == 0:
            records[-1] = _record(writer * 1000 + 49, status=None)  # NOT NULL violation at the end
        try:
            return f"stored {store.add_predictions(service, records).accepted}"
        except Exception as exc:  # the outcome under test
            return type(exc).__name__

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(write, range(12)))
    assert [o == "stored 50" for o in outcomes] == [w % 3 != 0 for w in range(12)], outcomes
    assert store.count_window(service, NOW - 1, NOW + 1) == 8 * 50
    assert sum(b.count for b in store.traffic_stats(service, NOW - 60, NOW + 60, 60)) == 8 * 50


def test_batches_resent_concurrently_store_each_request_id_once(store: Store) -> None:
    """Writers racing with overlapping request ids (a client retrying while its first try is in
    flight): each id is stored and counted once, and the acceptances add up to exactly that."""
    from concurrent.futures import ThreadPoolExecutor

    service = _service(store)
    ids = list(range(300))

    def write(writer: int) -> tuple[int, int]:
        order = ids[writer * 50 :] + ids[: writer * 50]  # the same ids, starting at different places
        result = store.add_predictions(service, [_record(i) for i in order])
        return result.accepted, result.duplicates

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(write, range(4)))
    assert sum(accepted for accepted, _ in outcomes) == len(ids)
    assert all(accepted + duplicates == len(ids) for accepted, duplicates in outcomes)
    assert store.count_window(service, NOW - 1, NOW + 1) == len(ids)
    assert sum(b.count for b in store.traffic_stats(service, NOW - 60, NOW + 60, 60)) == len(ids)


def test_writers_racing_on_ids_in_opposite_orders_all_succeed(store: Store) -> None:
    """Two clients re-sending the same ids in opposite orders, many times over: on PostgreSQL
    each writer locks an id's index entry as it inserts it, so unordered batches deadlock
    (one writer's batch failed with DeadlockDetected); every batch must be stored whole."""
    from concurrent.futures import ThreadPoolExecutor

    service = _service(store)
    rounds, size = 15, 200
    batches = []
    for r in range(rounds):
        ids = list(range(r * size, (r + 1) * size))
        back = ids[::-1]
        batches += [ids, back, ids[size // 2 :] + ids[: size // 2], back[size // 2 :] + back[: size // 2]]

    def write(order: list[int]) -> int:
        return store.add_predictions(service, [_record(i) for i in order]).accepted

    with ThreadPoolExecutor(4) as pool:
        accepted = sum(pool.map(write, batches))
    assert accepted == rounds * size
    assert store.count_window(service, NOW - 1, NOW + 1) == rounds * size


def test_a_lease_has_one_holder_until_released_or_expired(store: Store) -> None:
    assert store.take_lease("check:1", "worker-a", 60, now=NOW)
    assert not store.take_lease("check:1", "worker-b", 60, now=NOW + 30)
    assert store.take_lease("check:1", "worker-a", 60, now=NOW + 30)  # the holder may extend it
    assert store.take_lease("check:2", "worker-b", 60, now=NOW + 30)  # other names are independent
    assert store.take_lease("check:1", "worker-b", 60, now=NOW + 90)  # expired: taken over
    store.release_lease("check:1", "worker-a")  # no longer the holder: changes nothing
    assert not store.take_lease("check:1", "worker-a", 60, now=NOW + 100)
    store.release_lease("check:1", "worker-b")
    assert store.take_lease("check:1", "worker-a", 60, now=NOW + 100)
