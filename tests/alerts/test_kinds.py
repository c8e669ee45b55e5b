"""Each rule kind judged against metrics really stored: checks, traffic rollups, agent samples.

Kinds only read, through ``StoreMetricSource``; they run on SQLite here (the store's reads
have their own contract suite on both backends, and the engine tests run on both).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from monitor.alerts.kinds import get_kind
from monitor.alerts.sources import StoreMetricSource
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig
from monitor.records import HostSample, PredictionRecord, Service
from monitor.store import Store

NOW = time.time()
SUMMARY = {
    "drift_share": 0.5,
    "dataset_drift": True,
    "drifted_features": ["income", "age"],
    "prediction_drift": {"method": "psi", "score": 0.31, "threshold": 0.1, "drifted": True},
    "quality": {"f1": 0.71},
    "estimated_quality": {"accuracy": 0.8, "f1": 0.78},
    "decay": {"f1": {"absolute": 0.09, "relative": 0.112}},
    "estimated_decay": {"f1": {"absolute": 0.02, "relative": 0.025}},
}
FEATURES = [
    {"name": "income", "type": "numerical", "method": "wasserstein", "score": 0.4, "threshold": 0.1, "drifted": True},
    {
        "name": "city",
        "type": "categorical",
        "method": "jensenshannon",
        "score": 0.02,
        "threshold": 0.1,
        "drifted": False,
    },
]


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


def _rule(**fields: object) -> AlertRuleConfig:
    return AlertRuleConfig.model_validate({"name": "r", **fields})


def _judge(store: Store, **fields: object) -> list[tuple[dict[str, str], float | None, bool]]:
    rule = _rule(**fields)
    found = get_kind(rule.kind).evaluate(rule, StoreMetricSource(store), NOW)
    return [(o.scope, o.value, o.breached) for o in found]


@pytest.fixture
def credit(store: Store) -> Service:
    service = store.upsert_service("credit", task="classification")
    store.add_check(
        service,
        window_start=NOW - 3600,
        window_end=NOW,
        model_version="3",
        status="ok",
        trigger="schedule",
        summary=CheckSummary.decode(SUMMARY),
        results={"features": FEATURES},
    )
    return service


def test_drift_share_breaches_above_its_threshold(store: Store, credit: Service) -> None:
    assert _judge(store, kind="drift_share", service="credit", threshold=0.3) == [({"service": "credit"}, 0.5, True)]
    assert _judge(store, kind="drift_share", service="credit", threshold=0.6) == [({"service": "credit"}, 0.5, False)]


def test_service_less_rules_cover_every_service_and_skip_unchecked_ones(store: Store, credit: Service) -> None:
    store.upsert_service("fraud", task="classification")  # never checked: nothing to judge
    assert _judge(store, kind="drift_share", threshold=0.3) == [({"service": "credit"}, 0.5, True)]


def test_feature_drift_follows_the_features_own_test(store: Store, credit: Service) -> None:
    drifted = _judge(store, kind="feature_drift", service="credit", feature="income")
    stable = _judge(store, kind="feature_drift", service="credit", feature="city")
    assert drifted == [({"service": "credit", "feature": "income"}, 0.4, True)]
    assert stable == [({"service": "credit", "feature": "city"}, 0.02, False)]
    assert _judge(store, kind="feature_drift", service="credit", feature="zip") == []


def test_prediction_drift_and_model_version_scope(store: Store, credit: Service) -> None:
    assert _judge(store, kind="prediction_drift", service="credit") == [({"service": "credit"}, 0.31, True)]
    assert _judge(store, kind="prediction_drift", service="credit", model_version="2") == []


@pytest.mark.parametrize(
    ("options", "threshold", "value", "breached"),
    [
        ({}, 0.05, 0.09, True),
        ({"mode": "relative"}, 0.2, 0.112, False),
        ({"source": "estimated"}, 0.05, 0.02, False),
        ({"source": "estimated", "mode": "relative"}, 0.01, 0.025, True),
    ],
)
def test_quality_decay_realized_or_estimated_absolute_or_relative(
    store: Store, credit: Service, options: dict[str, str], threshold: float, value: float, breached: bool
) -> None:
    found = _judge(store, kind="quality_decay", service="credit", metric="f1", threshold=threshold, options=options)
    assert found == [({"service": "credit", "metric": "f1"}, pytest.approx(value), breached)]


def _traffic(store: Store, service: Service, latencies: list[float], errors: int) -> None:
    records = [
        PredictionRecord(f"q{i}", NOW - 120 + i * 0.01, {"x": 1.0}, 1, None, lat, "3", "error" if i < errors else "ok")
        for i, lat in enumerate(latencies)
    ]
    store.add_predictions(service, records)


def test_latency_percentile_over_its_bound(store: Store, credit: Service) -> None:
    _traffic(store, credit, [20.0] * 90 + [900.0] * 10, errors=0)
    ((scope, p95, breached),) = _judge(store, kind="latency", service="credit", metric="p95", threshold=300)
    assert scope == {"service": "credit"} and breached and p95 > 300
    ((_, p50, calm),) = _judge(store, kind="latency", service="credit", metric="p50", threshold=300)
    assert p50 < 50 and not calm


def test_error_rate_over_the_window(store: Store, credit: Service) -> None:
    _traffic(store, credit, [10.0] * 50, errors=5)
    assert _judge(store, kind="error_rate", service="credit", threshold=0.05) == [({"service": "credit"}, 0.1, True)]
    assert _judge(store, kind="error_rate", service="credit", threshold=0.2)[0][2] is False


def test_no_data_counts_minutes_since_the_last_prediction(store: Store, credit: Service) -> None:
    assert _judge(store, kind="no_data", service="credit", threshold=5) == [({"service": "credit"}, None, True)]
    _traffic(store, credit, [10.0], errors=0)  # two minutes ago
    ((_, minutes, breached),) = _judge(store, kind="no_data", service="credit", threshold=5)
    assert minutes == pytest.approx(2.0, abs=0.05) and not breached
    assert _judge(store, kind="no_data", service="credit", threshold=1)[0][2] is True


def test_resource_rules_watch_each_host_and_gpu_by_metric_name(store: Store) -> None:
    store.add_host_samples("node-1", [HostSample(NOW - 60, "host", "", {"cpu_percent": 97.0, "memory_percent": 40.0})])
    store.add_host_samples("node-2", [HostSample(NOW - 60, "host", "", {"cpu_percent": 12.0})])
    gpu = {"utilization_percent": 99.0, "memory_used_bytes": 75e9, "memory_total_bytes": 80e9}
    store.add_host_samples("node-1", [HostSample(NOW - 30, "gpu", "0", gpu)])
    cpu = _judge(store, kind="resource", metric="cpu_percent", threshold=90)
    assert [(s["host"], v, b) for s, v, b in cpu] == [("node-1", 97.0, True), ("node-2", 12.0, False)]
    memory = _judge(store, kind="resource", metric="memory_used_percent", threshold=90, options={"sample_kind": "gpu"})
    assert memory == [({"host": "node-1", "device": "gpu:0", "metric": "memory_used_percent"}, 93.75, True)]
    assert _judge(store, kind="resource", metric="utilization_percent", threshold=50, host="node-2") == []
