"""What no backend can keep is refused with ValidationFailed naming the field, on SQLite and PostgreSQL alike.

Before, PostgreSQL answered a NUL character with psycopg's DataError, orjson refused
integers past 64 bits with a TypeError, and times past about 5.5e20 overflowed the
``minute`` BIGINT: each a 500 at the API (issue 14).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd
import pytest

from monitor.check_summary import CheckSummary
from monitor.drift.reference import keep_reference
from monitor.errors import ValidationFailed
from monitor.records import Feature, HostSample, LabelRecord, PredictionRecord, Service
from monitor.store import Store

NOW = 1_800_000_000.0
NUL = "a\x00b"


def _service(store: Store) -> Service:
    return store.upsert_service(
        "credit", task="classification", features=(Feature("age"), Feature("city", "categorical"))
    )


def _prediction(**overrides: object) -> PredictionRecord:
    values: dict[str, object] = {
        "request_id": "r1",
        "ts": NOW,
        "features": {"age": 30, "city": "paris"},
        "prediction": 1,
        "model_version": "1",
    }
    values.update(overrides)
    return PredictionRecord(**values)  # type: ignore[arg-type]


def _predictions(*records: PredictionRecord) -> Callable[[Store, Service], object]:
    return lambda store, service: store.add_predictions(service, [_prediction(request_id="ok"), *records])


def _labels(*records: LabelRecord) -> Callable[[Store, Service], object]:
    return lambda store, service: store.add_labels(service, list(records))


NUL_WRITES: dict[str, tuple[Callable[[Store, Service], object], str]] = {
    "request id": (_predictions(_prediction(request_id=NUL)), "records[1].request_id"),
    "model version": (_predictions(_prediction(model_version=NUL)), "records[1].model_version"),
    "feature value": (_predictions(_prediction(features={"age": 1, "city": NUL})), "records[1].features.city"),
    "feature key": (_predictions(_prediction(features={NUL: 1})), "records[1].features.'a\\x00b'"),
    "prediction": (_predictions(_prediction(prediction=[NUL])), "records[1].prediction[0]"),
    "label request id": (_labels(LabelRecord(NUL, 1, NOW)), "labels[0].request_id"),
    "label": (_labels(LabelRecord("r1", 1, NOW), LabelRecord("r2", {"k": NUL}, NOW)), "labels[1].label.k"),
    "host": (lambda s, _: s.add_host_samples(NUL, [HostSample(NOW, "host", "", {"cpu": 1.0})]), "host"),
    "host sample name": (lambda s, _: s.add_host_samples("h", [HostSample(NOW, "gpu", NUL, {})]), "samples[0].name"),
    "host metric": (
        lambda s, _: s.add_host_samples("h", [HostSample(NOW, "host", "", {NUL: 1.0})]),
        "samples[0].metrics.'a\\x00b'",
    ),
    "service target": (lambda s, _: s.upsert_service("other", task="regression", target=NUL), "target"),
    "service name": (lambda s, _: s.upsert_service(NUL, task="regression"), "name"),
    "feature name": (
        lambda s, _: s.upsert_service("other", task="regression", features=(Feature(NUL),)),
        "features[0].name",
    ),
    "reference version": (lambda s, svc: keep_reference(s, svc, pd.DataFrame({"age": [1]}), NUL), "model_version"),
    "reference column": (
        lambda s, svc: keep_reference(s, svc, pd.DataFrame({"age": [1], NUL: [2]})),
        "reference.columns",
    ),
    "reference value": (
        lambda s, svc: keep_reference(s, svc, pd.DataFrame({"age": [1], "city": [NUL]})),
        "reference.columns.city.values[0]",
    ),
    "alert rule name": (lambda s, _: s.put_alert_rule(NUL, {"kind": "latency"}, actor="a"), "name"),
    "alert rule spec": (lambda s, _: s.put_alert_rule("r", {"kind": NUL}, actor="a"), "spec.kind"),
    "config rule": (lambda s, _: s.sync_config_rules({"r": {"service": NUL}}), "alerts.r.service"),
    "silence matcher": (
        lambda s, _: s.add_silence({"service": NUL}, starts_at=NOW, ends_at=NOW + 60, created_by="a"),
        "matchers.service",
    ),
    "silence comment": (
        lambda s, _: s.add_silence({}, starts_at=NOW, ends_at=NOW + 60, created_by="a", comment=NUL),
        "comment",
    ),
    "audit target": (lambda s, _: s.audit("a", "x.y", NUL), "target"),
    "service lookup": (lambda s, _: s.get_service(NUL), "service"),
    "alert filter": (lambda s, _: s.list_alerts(service=NUL), "service"),
    "audit filter": (lambda s, _: s.audit_entries(target=NUL), "target"),
    "host filter": (lambda s, _: s.host_samples(NOW, NOW + 1, host=NUL), "host"),
    "reference lookup": (lambda s, svc: s.reference_info(svc, NUL), "model_version"),
    "job params": (lambda s, _: s.enqueue_job("retrain", "credit", {"mode": NUL}, "a"), "params.mode"),
    "job filter": (lambda s, _: s.list_jobs(service=NUL), "service"),
    "decision filter": (lambda s, _: s.list_decisions(NUL), "service"),
}


@pytest.mark.parametrize("case", NUL_WRITES, ids=list(NUL_WRITES))
def test_text_with_a_nul_character_is_refused_naming_the_field(store: Store, case: str) -> None:
    write, field = NUL_WRITES[case]
    service = _service(store)
    with pytest.raises(
        ValidationFailed, match=rf"^{re.escape(field)}: (this key )?contains a NUL character"
    ) as refused:
        write(store, service)
    assert refused.value.field == field


def test_a_batch_with_one_unstorable_record_stores_none_of_it_and_values_at_the_limits_store(store: Store) -> None:
    service = _service(store)
    with pytest.raises(ValidationFailed, match=r"^records\[1\]\.request_id: contains a NUL"):
        _predictions(_prediction(request_id=NUL))(store, service)
    assert store.count_window(service, NOW - 60, NOW + 60) == 0
    assert store.traffic_stats(service, NOW - 60, NOW + 60, 60) == []
    edges = {"age": 2**64 - 1, "low": -(2**63), "city": "\\u0000"}  # the text "\u0000" is no NUL
    store.add_predictions(service, [_prediction(features=edges, ts=253402300799.0)])
    (stored,) = store.recent_predictions(service)
    assert stored.features == edges


BIG = 2**64
HUGE_WRITES: dict[str, tuple[Callable[[Store, Service], object], str]] = {
    "feature": (_predictions(_prediction(features={"age": BIG})), "records[1].features.age"),
    "negative feature": (_predictions(_prediction(features={"age": -(2**63) - 1})), "records[1].features.age"),
    "prediction": (_predictions(_prediction(prediction=10**30)), "records[1].prediction"),
    "probabilities": (_predictions(_prediction(probabilities={"1": BIG})), "records[1].probabilities.1"),
    "label": (_labels(LabelRecord("r1", 10**30, NOW)), "labels[0].label"),
    "rule spec": (lambda s, _: s.put_alert_rule("r", {"threshold": BIG}, actor="a"), "spec.threshold"),
}


@pytest.mark.parametrize("case", HUGE_WRITES, ids=list(HUGE_WRITES))
def test_integers_beyond_64_bits_are_refused_naming_the_field(store: Store, case: str) -> None:
    write, field = HUGE_WRITES[case]
    service = _service(store)
    with pytest.raises(ValidationFailed, match=rf"^{re.escape(field)}: expected an integer within 64 bits"):
        write(store, service)


def test_lone_surrogates_and_over_long_ids_are_refused(store: Store) -> None:
    service = _service(store)
    with pytest.raises(ValidationFailed, match=r"^records\[1\]\.request_id: contains a lone surrogate"):
        _predictions(_prediction(request_id="a\udc80"))(store, service)
    with pytest.raises(ValidationFailed, match=r"^records\[1\]\.features\.city: contains a lone surrogate"):
        _predictions(_prediction(features={"city": "\ud800"}))(store, service)
    with pytest.raises(ValidationFailed, match=r"^records\[1\]\.request_id: expected at most 200 characters, got 201"):
        _predictions(_prediction(request_id="x" * 201))(store, service)


@pytest.mark.parametrize("ts", [1e21, -1e21, math.inf, math.nan])
def test_prediction_and_label_times_past_year_9999_are_refused(store: Store, ts: float) -> None:
    service = _service(store)
    with pytest.raises(ValidationFailed, match=r"^records\[1\]\.ts: expected epoch seconds between"):
        _predictions(_prediction(ts=ts))(store, service)
    with pytest.raises(ValidationFailed, match=r"^labels\[0\]\.ts: expected epoch seconds between"):
        store.add_labels(service, [LabelRecord("r1", 1, ts)])


@pytest.mark.parametrize("bound", [5.6e20, -1e30, math.inf])
def test_reading_windows_past_year_9999_is_refused_naming_the_bound(store: Store, bound: float) -> None:
    service = _service(store)
    reads: list[Callable[[], object]] = [
        lambda: store.traffic_stats(service, NOW, bound),
        lambda: store.count_window(service, NOW, bound),
        lambda: store.host_samples(NOW, bound),
    ]
    for read in reads:
        with pytest.raises(ValidationFailed, match=r"^end: expected epoch seconds between"):
            read()
    with pytest.raises(ValidationFailed, match=r"^start: expected epoch seconds between"):
        store.sample_window(service, bound, NOW, 100)


def test_messages_mlwatch_writes_keep_a_nul_or_surrogate_as_an_escape(store: Store) -> None:
    """An error or a job's log line is mlwatch's own account of something: kept, with the character escaped."""
    service = _service(store)
    check_id = store.add_check(
        service,
        window_start=NOW,
        window_end=NOW + 60,
        model_version=None,
        status="error",
        trigger="manual",
        summary=CheckSummary(),
        results={},
        error="bad \x00 and \udc80",
    )
    assert store.get_check(check_id).error == "bad \\x00 and \\udc80"
    job, _ = store.enqueue_job("retrain", "credit", {}, "a")
    store.job_progress(job.id, line="epoch \x00")
    assert store.get_job(job.id).log.endswith("epoch \\x00\n")
