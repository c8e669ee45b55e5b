"""``GET /metrics``: Prometheus text exposition of traffic, latency, drift and quality.

Latency histograms per service and model version come from the ``traffic_minutes`` rollups:
their ``le`` bounds are ``monitor.store.latency.PROMETHEUS_BOUNDS_MS`` (every third fine
bound), so each cumulative bucket is an exact sum of stored counts. Drift and quality
gauges come from each service's latest check.

Stream consumers (``mlwatch consume``) each write a heartbeat row every few seconds
(``monitor.stream.heartbeat``); their counters, backlog and publish-to-commit lag are
exported per consumer, labelled by stream, durable consumer and ``host:pid``, for the
consumers heard from within the last hour.

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
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from monitor.records import CheckRecord
from monitor.server.auth import Principal, require
from monitor.server.exposition import CONTENT_TYPE, bound, header, sample
from monitor.server.routes.services import StoreDep
from monitor.store.consumers import ConsumerStatus
from monitor.store.halves import HalfCounts
from monitor.store.latency import PROMETHEUS_BOUNDS_MS
from monitor.store.traffic import TrafficTotal
from monitor.stream.heartbeat import LAG_BOUNDS_S, SHOWN_FOR_S

router = APIRouter(tags=["metrics"])
_EVERY = 3  # PROMETHEUS_BOUNDS_MS == BOUNDS[::3]


@router.head("/metrics", response_class=PlainTextResponse, include_in_schema=False)  # GET without the body
@router.get("/metrics", response_class=PlainTextResponse)
def metrics(store: StoreDep, _: Annotated[Principal, Depends(require("viewer"))]) -> PlainTextResponse:
    """Prometheus metrics: latency histograms, requests, errors, drift and quality gauges, stream consumers."""
    totals = store.traffic_totals()
    checks = [(s.name, store.latest_check(s)) for s in store.list_services()]
    halves = store.half_counts(time.time())
    consumers = store.stream_consumers(since=time.time() - SHOWN_FOR_S)
    lines = [*traffic_lines(totals), *check_lines([(n, c) for n, c in checks if c is not None])]
    text = "".join([*lines, *halves_lines(halves), *stream_lines(consumers)])
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


def halves_lines(counts: list[HalfCounts]) -> Iterator[str]:
    """KServe logger events waiting for their other half, and those dropped unpaired (``POST /v1/cloudevents``)."""
    name = "mlwatch_cloudevents_pending"
    yield header(name, "gauge", "CloudEvents (a request or a response) waiting for their other half.")
    yield from (sample(name, {"service": c.service}, c.pending) for c in counts)
    name = "mlwatch_cloudevents_expired_total"
    yield header(name, "counter", "CloudEvents dropped because their other half did not come within pending_ttl.")
    yield from (sample(name, {"service": c.service}, c.expired) for c in counts)


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
    "mlwatch_prediction_drifted": "1 when the prediction column drifted in the latest check.",
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
        [
            ("mlwatch_check_rows", summary.rows),
            ("mlwatch_drift_share", summary.drift_share),
            ("mlwatch_dataset_drift", float(summary.dataset_drift)),
            ("mlwatch_label_coverage", summary.label_coverage),
        ],
    )
    prediction = summary.prediction_drift
    if prediction is not None and _number(prediction.score):
        yield "mlwatch_prediction_drift_score", s, prediction.score
        yield "mlwatch_prediction_drifted", s, float(prediction.drifted)
    for feature in check.results.get("features") or []:
        if isinstance(feature, dict) and _number(feature.get("score")):
            labels = {**s, "feature": str(feature.get("name"))}
            yield "mlwatch_feature_drift_score", labels, float(feature["score"])
            yield "mlwatch_feature_drifted", labels, float(bool(feature.get("drifted")))
    measured = ((summary.quality, "mlwatch_quality"), (summary.estimated_quality, "mlwatch_estimated_quality"))
    for found, metric in measured:
        for name, value in (found or {}).items():
            if _number(value):
                yield metric, {**s, "metric": str(name)}, float(value)


def _scalars(labels: dict[str, str], pairs: Iterable[tuple[str, float]]) -> Iterator[tuple[str, dict[str, str], float]]:
    for metric, value in pairs:
        if _number(value):
            yield metric, labels, float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


_STREAM_COUNTERS: list[tuple[str, str, Callable[[ConsumerStatus], int]]] = [
    ("mlwatch_stream_messages_total", "Messages a stream consumer fetched.", lambda c: c.consumed),
    ("mlwatch_stream_records_total", "Records a stream consumer stored (new to the store).", lambda c: c.stored),
    (
        "mlwatch_stream_duplicate_records_total",
        "Records a stream consumer found stored already (redelivered or sent twice).",
        lambda c: c.duplicates,
    ),
    ("mlwatch_stream_dead_letters_total", "Messages sent to mlwatch.dead.<subject>.", lambda c: c.dead_lettered),
    ("mlwatch_stream_redelivered_messages_total", "Messages delivered more than once.", lambda c: c.redelivered),
    (
        "mlwatch_stream_retried_messages_total",
        "Messages handed back for redelivery while the store was down.",
        lambda c: c.retried,
    ),
]


def stream_lines(consumers: list[ConsumerStatus]) -> Iterator[str]:
    """Counters, throughput and lag of every stream consumer, and the backlog of each durable consumer."""
    if not consumers:
        return
    for name, help_, value in _STREAM_COUNTERS:
        yield header(name, "counter", help_)
        yield from (sample(name, _consumer_labels(c), value(c)) for c in consumers)
    yield from _consumer_gauge(
        "mlwatch_stream_records_per_second",
        "Records a consumer stored or found stored per second, between its last two heartbeats.",
        consumers,
        lambda c: c.records_per_second,
    )
    yield from _consumer_gauge(
        "mlwatch_stream_consumer_last_seen_timestamp_seconds",
        "When the consumer last wrote its heartbeat; one that stops moving has stopped or died.",
        consumers,
        lambda c: c.updated_at,
    )
    yield from _lag_lines(consumers)
    yield from _pending_lines(consumers)


def _consumer_labels(status: ConsumerStatus) -> dict[str, str]:
    return {"stream": status.stream, "durable": status.durable, "consumer": status.consumer}


def _consumer_gauge(
    name: str, help_: str, consumers: list[ConsumerStatus], value: Callable[[ConsumerStatus], float]
) -> Iterator[str]:
    yield header(name, "gauge", help_)
    yield from (sample(name, _consumer_labels(c), value(c)) for c in consumers)


def _lag_lines(consumers: list[ConsumerStatus]) -> Iterator[str]:
    name = "mlwatch_stream_lag_seconds"
    yield header(name, "histogram", "Seconds from the broker's receipt of a message to the commit of its records.")
    for status in consumers:
        labels = _consumer_labels(status)
        buckets = status.lag_buckets or (0,) * (len(LAG_BOUNDS_S) + 1)
        cumulative = 0
        for bound_s, count in zip(LAG_BOUNDS_S, buckets, strict=False):
            cumulative += count
            yield sample(f"{name}_bucket", {**labels, "le": bound(bound_s)}, cumulative)
        yield sample(f"{name}_bucket", {**labels, "le": "+Inf"}, status.lag_count)
        yield sample(f"{name}_sum", labels, status.lag_sum)
        yield sample(f"{name}_count", labels, status.lag_count)


def _pending_lines(consumers: list[ConsumerStatus]) -> Iterator[str]:
    """The backlog belongs to the durable consumer, which its consumers share: the latest report of any."""
    latest: dict[tuple[str, str], ConsumerStatus] = {}
    for status in sorted(consumers, key=lambda c: c.updated_at):
        if status.pending is not None:
            latest[(status.stream, status.durable)] = status
    if not latest:
        return
    name = "mlwatch_stream_pending_messages"
    yield header(name, "gauge", "Messages of the stream not yet delivered to the durable consumer, as last seen.")
    for (stream, durable), status in sorted(latest.items()):
        yield sample(name, {"stream": stream, "durable": durable}, status.pending or 0)
