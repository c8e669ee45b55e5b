"""`GET /metrics`: Prometheus text parsed back, bucket counts matching what was ingested."""

from __future__ import annotations

import random
import time
from typing import Any

import httpx

from monitor.check_summary import CheckSummary
from monitor.records import PredictionRecord
from monitor.store import Store
from monitor.store.latency import PROMETHEUS_BOUNDS_MS
from tests.collectors.conftest import register
from tests.conftest import RunningServer

Sample = tuple[str, dict[str, str], float]


def parse_exposition(text: str) -> tuple[dict[str, str], list[Sample]]:
    """A small parser of the Prometheus text format: TYPE lines and samples with labels."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            name, _, rest = head.partition("{")
            labels = {}
            for pair in _split_labels(rest.rstrip("}")):
                key, _, quoted = pair.partition("=")
                labels[key] = quoted[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            samples.append((name, labels, float(value)))
    return types, samples


def _split_labels(inner: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for char in inner:
        if char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
        if char == '"' and not escaped:
            quoted = not quoted
        escaped = char == "\\" and not escaped
    return [*parts, current] if current else parts


def _records(latencies: list[float], version: str, errors: int) -> list[PredictionRecord]:
    now = time.time()
    return [
        PredictionRecord(
            f"{version}-{i}", now - i, {"x": 1.0}, 1, None, latency, version, "error" if i < errors else "ok"
        )
        for i, latency in enumerate(latencies)
    ]


def test_metrics_histogram_buckets_and_counters_match_the_ingested_latencies(api: RunningServer) -> None:
    register(api, "svc")
    rng = random.Random(7)
    latencies = {
        "1": [rng.lognormvariate(2.0, 1.2) for _ in range(400)],
        'b\\2"': [rng.uniform(0.05, 3000) for _ in range(150)],
    }
    with api.client() as client:
        for version, values in latencies.items():
            body = {
                "records": [
                    {
                        "request_id": r.request_id,
                        "timestamp": r.ts,
                        "features": r.features,
                        "latency_ms": r.latency_ms,
                        "model_version": r.model_version,
                        "status": r.status,
                    }
                    for r in _records(values, version, errors=5 if version == "1" else 0)
                ]
            }
            client.post("/v1/services/svc/predictions", json=body).raise_for_status()
    store = Store.open(api.store_url)
    viewer, ingest = store.create_token("viewer"), store.create_token("ingest")
    store.close()
    answer = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {viewer}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_exposition(answer.text)
    assert types["mlwatch_request_latency_seconds"] == "histogram" and types["mlwatch_requests_total"] == "counter"
    for version, values in latencies.items():
        labels = {"service": "svc", "model_version": version}
        buckets = {
            s[1]["le"]: s[2]
            for s in samples
            if s[0] == "mlwatch_request_latency_seconds_bucket" and {k: s[1][k] for k in labels} == labels
        }
        want = {repr(round(b / 1000, 12)): sum(v <= b for v in values) for b in PROMETHEUS_BOUNDS_MS}
        assert {le: buckets[le] for le in want} == want
        assert buckets["+Inf"] == len(values)
        count = [s[2] for s in samples if s[0] == "mlwatch_requests_total" and s[1] == labels]
        errors = [s[2] for s in samples if s[0] == "mlwatch_request_errors_total" and s[1] == labels]
        total = [s[2] for s in samples if s[0] == "mlwatch_request_latency_seconds_sum" and s[1] == labels]
        assert (count, errors) == ([len(values)], [5 if version == "1" else 0])
        assert abs(total[0] - sum(values) / 1000) < 1e-6
    refused = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {ingest}"})
    assert refused.status_code == 403 and "viewer" in refused.json()["message"]
    assert httpx.get(f"{api.url}/metrics").status_code == 401


def test_metrics_expose_drift_and_quality_of_the_latest_check(api: RunningServer) -> None:
    register(api, "checked")
    store = Store.open(api.store_url)
    service = store.get_service("checked")
    common: dict[str, Any] = {"model_version": None, "status": "ok", "trigger": "manual"}
    old = CheckSummary(drift_share=0.9)
    store.add_check(service, window_start=0, window_end=100, summary=old, results={}, **common)
    summary = CheckSummary.decode(
        {
            "rows": 500,
            "drift_share": 0.25,
            "dataset_drift": False,
            "label_coverage": 0.4,
            "quality": {"f1": 0.8, "accuracy": None},
            "prediction_drift": {"method": "psi", "score": 0.31, "drifted": True},
        }
    )
    results = {
        "features": [{"name": "x", "score": 0.01, "drifted": True}, {"name": "y", "score": 0.6, "drifted": False}]
    }
    store.add_check(service, window_start=100, window_end=200, summary=summary, results=results, **common)
    viewer = store.create_token("viewer")
    store.close()
    _, samples = parse_exposition(httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {viewer}"}).text)
    mine = {
        (name, tuple(sorted(labels.items()))): value
        for name, labels, value in samples
        if labels.get("service") == "checked"
    }
    s = (("service", "checked"),)
    assert mine == {
        ("mlwatch_check_timestamp_seconds", s): 200.0,
        ("mlwatch_check_rows", s): 500.0,
        ("mlwatch_drift_share", s): 0.25,
        ("mlwatch_dataset_drift", s): 0.0,
        ("mlwatch_label_coverage", s): 0.4,
        ("mlwatch_prediction_drift_score", s): 0.31,
        ("mlwatch_prediction_drifted", s): 1.0,
        ("mlwatch_feature_drift_score", (("feature", "x"), *s)): 0.01,
        ("mlwatch_feature_drifted", (("feature", "x"), *s)): 1.0,
        ("mlwatch_feature_drift_score", (("feature", "y"), *s)): 0.6,
        ("mlwatch_feature_drifted", (("feature", "y"), *s)): 0.0,
        ("mlwatch_quality", (("metric", "f1"), *s)): 0.8,
    }


def test_traffic_totals_sum_the_rollups_per_service_and_version(store: Store) -> None:
    a = store.upsert_service("a", task="classification")
    store.upsert_service("b", task="classification")
    store.add_predictions(a, _records([1.0, 2.0, 400.0], "1", errors=1))
    store.add_predictions(a, [*_records([5.0], "", errors=0)[:1], PredictionRecord("n", time.time(), {}, None)])
    [unknown, one] = store.traffic_totals()
    assert (one.service, one.model_version, one.count, one.errors, one.latency_count) == ("a", "1", 3, 1, 3)
    assert one.latency_sum_ms == 403.0 and sum(one.histogram) == 3
    assert (unknown.model_version, unknown.count, unknown.latency_count) == ("", 2, 1)


def test_bucket_bounds_are_written_as_the_decimals_they_stand_for(api: RunningServer) -> None:
    register(api, "bounds")
    with api.client() as client:
        body = {"records": [{"request_id": "b-1", "features": {"x": 1.0}, "latency_ms": 0.4}]}
        client.post("/v1/services/bounds/predictions", json=body).raise_for_status()
        _, samples = parse_exposition(client.get("/metrics").text)
    bounds = [
        s[1]["le"] for s in samples if s[0] == "mlwatch_request_latency_seconds_bucket" and s[1]["service"] == "bounds"
    ]
    assert bounds == [repr(0.0001 * 2**k) for k in range(len(PROMETHEUS_BOUNDS_MS))] + ["+Inf"]
    assert bounds[2:4] == ["0.0004", "0.0008"]  # not 0.00040000000000000013


def test_head_metrics_answers_like_get_without_a_body(api: RunningServer) -> None:
    with api.client() as client:
        head, get = client.head("/metrics"), client.get("/metrics")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert httpx.head(f"{api.url}/metrics").status_code == 401
    operations = [
        op["operationId"]
        for ops in httpx.get(f"{api.url}/openapi.json").json()["paths"].values()
        for op in ops.values()
    ]
    assert len(operations) == len(set(operations))  # one route per method, so no duplicate operation id
