"""``GET /metrics``: Prometheus text exposition of traffic, latency, drift and quality.

Latency histograms per service and model version come from the ``traffic_minutes`` rollups:
their ``le`` bounds are ``monitor.store.latency.PROMETHEUS_BOUNDS_MS`` (every third fine
bound), so each cumulative bucket is an exact sum of stored counts. Drift and quality
gauges come from each service's latest check.

Every value here is read from the shared store, none from this process: the counters are
what the whole stack logged, whichever replica answers. So scrape the stack once (the
compose service name, as ``deploy/prometheus.yml`` does), not each replica: a sum over
three replicas' scrapes is three times the real throughput. Per-process counters were the
other way out, but a server runs several uvicorn workers behind one port, and a scrape
lands on any one of them, so a per-process counter would jump between workers' values.

``HEAD /metrics`` is answered too (status and headers, no body): uptime probes and
Prometheus-compatible agents use it to check the endpoint before scraping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from monitor.records import CheckRecord
from monitor.server.auth import Principal, require
from monitor.server.exposition import CONTENT_TYPE, bound, header, sample
from monitor.server.routes.services import StoreDep
from monitor.store.latency import PROMETHEUS_BOUNDS_MS
from monitor.store.traffic import TrafficTotal

router = APIRouter(tags=["metrics"])
_EVERY = 3  # PROMETHEUS_BOUNDS_MS == BOUNDS[::3]


@router.head("/metrics", response_class=PlainTextResponse, include_in_schema=False)  # GET without the body
@router.get("/metrics", response_class=PlainTextResponse)
def metrics(store: StoreDep, _: Annotated[Principal, Depends(require("viewer"))]) -> PlainTextResponse:
    """Prometheus metrics: latency histograms, requests, errors, drift and quality gauges."""
    totals = store.traffic_totals()
    checks = [(s.name, store.latest_check(s)) for s in store.list_services()]
    text = "".join([*traffic_lines(totals), *check_lines([(n, c) for n, c in checks if c is not None])])
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


def traffic_lines(totals: list[TrafficTotal]) -> Iterator[str]:
    """Histogram and counters of every service and model version."""
    name = "mlwatch_request_latency_seconds"
    yield header(name, "histogram", "Latency of logged predictions, from the per-minute rollups.")
    for total in totals:
        labels = {"service": total.service, "model_version": total.model_version}
        cumulative = 0
        for k, bound_ms in enumerate(PROMETHEUS_BOUNDS_MS):
            low = 0 if k == 0 else (k - 1) * _EVERY + 1
            cumulative += sum(total.histogram[low : k * _EVERY + 1])
            yield sample(f"{name}_bucket", {**labels, "le": bound(bound_ms / 1000.0)}, cumulative)
        yield sample(f"{name}_bucket", {**labels, "le": "+Inf"}, total.latency_count)
        yield sample(f"{name}_sum", labels, total.latency_sum_ms / 1000.0)
        yield sample(f"{name}_count", labels, total.latency_count)
    yield from _family("mlwatch_requests", "counter", "Logged predictions.", totals, lambda t: t.count, "_total")
    yield from _family(
        "mlwatch_request_errors", "counter", "Predictions logged as errors.", totals, lambda t: t.errors, "_total"
    )


def _family(name: str, kind: str, help_: str, totals: list[TrafficTotal], value: Any, suffix: str) -> Iterator[str]:
    yield header(f"{name}{suffix}", kind, help_)
    for total in totals:
        yield sample(f"{name}{suffix}", {"service": total.service, "model_version": total.model_version}, value(total))


def check_lines(checks: list[tuple[str, CheckRecord]]) -> Iterator[str]:
    """Gauges of each service's latest check."""
    gauges: dict[str, list[tuple[dict[str, str], float]]] = {}
    for service, check in checks:
        for metric, labels, value in _check_values(service, check):
            gauges.setdefault(metric, []).append((labels, value))
    for metric, samples in gauges.items():
        yield header(metric, "gauge", _HELP[metric])
        yield from (sample(metric, labels, value) for labels, value in samples)


_HELP = {
    "mlwatch_check_timestamp_seconds": "End of the window of the latest check.",
    "mlwatch_check_rows": "Rows the latest check looked at.",
    "mlwatch_drift_share": "Share of features drifted in the latest check.",
    "mlwatch_dataset_drift": "1 when the latest check found dataset drift.",
    "mlwatch_prediction_drift_score": "Drift score of the prediction column in the latest check.",
    "mlwatch_feature_drift_score": "Drift score of each feature in the latest check.",
    "mlwatch_feature_drifted": "1 when the feature drifted in the latest check.",
    "mlwatch_quality": "Model quality on labelled rows of the latest check.",
    "mlwatch_estimated_quality": "Estimated model quality (without labels) in the latest check.",
    "mlwatch_label_coverage": "Share of the latest check's rows that had labels.",
}


def _check_values(service: str, check: CheckRecord) -> Iterator[tuple[str, dict[str, str], float]]:
    s, summary = {"service": service}, check.summary
    yield "mlwatch_check_timestamp_seconds", s, check.window_end
    yield from _scalars(
        s,
        summary,
        [
            ("mlwatch_check_rows", "rows"),
            ("mlwatch_drift_share", "drift_share"),
            ("mlwatch_dataset_drift", "dataset_drift"),
            ("mlwatch_label_coverage", "label_coverage"),
        ],
    )
    prediction = summary.get("prediction_drift") or {}
    if _number(prediction.get("score")):
        yield "mlwatch_prediction_drift_score", s, float(prediction["score"])
    for feature in check.results.get("features") or []:
        if isinstance(feature, dict) and _number(feature.get("score")):
            labels = {**s, "feature": str(feature.get("name"))}
            yield "mlwatch_feature_drift_score", labels, float(feature["score"])
            yield "mlwatch_feature_drifted", labels, float(bool(feature.get("drifted")))
    for key, metric in (("quality", "mlwatch_quality"), ("estimated_quality", "mlwatch_estimated_quality")):
        for name, value in (summary.get(key) or {}).items():
            if _number(value):
                yield metric, {**s, "metric": str(name)}, float(value)


def _scalars(
    labels: dict[str, str], summary: dict[str, Any], pairs: Iterable[tuple[str, str]]
) -> Iterator[tuple[str, dict[str, str], float]]:
    for metric, key in pairs:
        if _number(summary.get(key)):
            yield metric, labels, float(summary[key])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
