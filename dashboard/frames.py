"""Tables the charts and grids draw, built from store records (plain pandas, no Streamlit).

Times become timezone-aware UTC timestamps; charts show them in the browser's zone and
``localize`` converts table columns to the viewer's zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
import pandas as pd

from dashboard.views import CheckHeadline, ServiceHealth, number
from monitor.records import CheckRecord, HostSample, StoredPrediction, TrafficBucket
from monitor.store.alerts import AlertRecord, SilenceRecord
from monitor.store.consumers import ConsumerStatus
from monitor.store.outbox import Delivery

TRAFFIC_COLUMNS = ["time", "version", "requests", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms", "mean_ms"]


def when(epoch: float | None) -> pd.Timestamp | None:
    """A UTC timestamp for epoch seconds (None stays None)."""
    return None if epoch is None else pd.Timestamp(epoch, unit="s", tz="UTC")


def localize(frame: pd.DataFrame, zone: str | None, columns: Iterable[str]) -> pd.DataFrame:
    """Convert the named timestamp columns to ``zone`` (the browser's), UTC when unknown."""
    out = frame.copy()
    for column in columns:
        if column in out:
            out[column] = pd.to_datetime(out[column], utc=True).dt.tz_convert(zone or "UTC")
    return out


def traffic_frame(buckets: Sequence[TrafficBucket]) -> pd.DataFrame:
    """One row per time bucket and model version."""
    rows = [
        (
            b.start,
            b.model_version or "unknown",
            b.count,
            b.errors,
            b.error_rate,
            b.latency_p50_ms,
            b.latency_p95_ms,
            b.latency_p99_ms,
            b.latency_mean_ms,
        )
        for b in buckets
    ]
    frame = pd.DataFrame(rows, columns=TRAFFIC_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame


SHOWN_VERSIONS = 5
"""Model versions a traffic chart draws one by one; older ones share a series (ten lines are spaghetti)."""
OLDER = "older"


def newest_versions(frame: pd.DataFrame, keep: int = SHOWN_VERSIONS) -> list[str]:
    """The ``keep`` versions that served most recently in ``frame`` (ties: more requests first)."""
    last = frame.groupby("version").agg(seen=("time", "max"), requests=("requests", "sum"))
    return last.sort_values(["seen", "requests"], ascending=False).index[:keep].astype(str).tolist()


def fold_versions(frame: pd.DataFrame, keep: int = SHOWN_VERSIONS) -> pd.DataFrame:
    """Traffic with every version but the ``keep`` newest summed into one ``older`` series per bucket.

    Counts add up; latency percentiles do not, so the folded rows carry none (the latency chart
    draws the newest versions only).
    """
    shown = newest_versions(frame, keep)
    old = frame[~frame["version"].isin(shown)]
    if old.empty:
        return frame
    folded = old.groupby("time", as_index=False)[["requests", "errors"]].sum()
    folded["version"] = OLDER
    folded["error_rate"] = folded["errors"] / folded["requests"].where(folded["requests"] > 0)
    return pd.concat([frame[frame["version"].isin(shown)], folded], ignore_index=True)[TRAFFIC_COLUMNS]


def latency_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Latency percentiles in long form (time, version, percentile, ms) for one line per percentile."""
    melted = frame.melt(
        id_vars=["time", "version"], value_vars=["p50_ms", "p95_ms", "p99_ms"], var_name="percentile", value_name="ms"
    )
    melted["percentile"] = melted["percentile"].str.removesuffix("_ms")
    return melted.dropna(subset=["ms"])


def resources_frame(samples: Sequence[tuple[str, HostSample]], bucket_seconds: int = 60) -> pd.DataFrame:
    """Agent samples in long form (time, host, kind, name, metric, value), averaged per time bucket."""
    rows = [
        (s.ts // bucket_seconds * bucket_seconds, host, s.kind, s.name or host, metric, float(value))
        for host, s in samples
        for metric, value in s.metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    columns = ["time", "host", "kind", "name", "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns).groupby(columns[:-1], as_index=False, sort=True)["value"].mean()
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame


def drift_frame(checks: Sequence[CheckRecord]) -> pd.DataFrame:
    """Per-feature drift of each check: time, check, feature, method, score, threshold, drifted, strength."""
    rows = [
        (
            c.window_end,
            c.id,
            str(f.get("name")),
            f.get("method"),
            number(f.get("score")),
            number(f.get("threshold")),
            bool(f.get("drifted")),
        )
        for c in checks
        for f in (c.results.get("features") or [])
        if isinstance(f, dict)
    ]
    frame = pd.DataFrame(rows, columns=["time", "check", "feature", "method", "score", "threshold", "drifted"])
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    frame["strength"] = [
        drift_strength(s, t, d) for s, t, d in zip(frame["score"], frame["threshold"], frame["drifted"], strict=True)
    ]
    return frame


def drift_strength(score: float | None, threshold: float | None, drifted: bool) -> float | None:
    """How far a feature is from its test's threshold, 1 at the threshold and more the more it drifted.

    Evidently's p-value tests drift when the score is *below* the threshold, its distances when
    it is at or above it; which one a row holds follows from its own verdict (``drifted`` differs
    from ``score >= threshold`` exactly for p-values), so no list of methods is kept here.
    """
    if score is None or threshold is None or threshold <= 0 or pd.isna(score) or pd.isna(threshold):
        return None
    p_value = drifted != (score >= threshold)
    strength = threshold / max(score, 1e-300) if p_value else score / threshold
    return min(strength, 1e6)  # a p-value of 0 is "infinitely" drifted; charts need a finite number


def quality_frame(checks: Sequence[CheckRecord], metric: str | None = None) -> pd.DataFrame:
    """Realized and estimated ``metric``, its baseline and label coverage of each check, in long form."""
    rows = []
    for c in checks:
        s = CheckHeadline.of(c, metric)
        for series, value in (("realized", s.quality), ("estimated", s.estimated_quality), ("baseline", s.baseline)):
            if value is not None:
                rows.append((c.window_end, series, value, s.label_coverage))
    frame = pd.DataFrame(rows, columns=["time", "series", "value", "label_coverage"])
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame


def checks_table(checks: Sequence[CheckRecord]) -> pd.DataFrame:
    """One row per check with its verdicts, for picking a report."""
    rows = []
    for c in checks:
        s = CheckHeadline.of(c)
        rows.append(
            {
                "check": c.id,
                "window end": when(c.window_end),
                "status": c.status,
                "verdict": s.verdict,
                "drift share": s.drift_share,
                "drifted features": ", ".join(s.drifted_features),
                "quality": s.quality,
                "estimated": s.estimated_quality,
                "label coverage": s.label_coverage,
                "version": c.model_version,
                "trigger": c.trigger,
                "error": c.error,
            }
        )
    return pd.DataFrame(rows)


def predictions_frame(predictions: Sequence[StoredPrediction]) -> pd.DataFrame:
    """Recent predictions as a table: features as compact JSON so any schema fits."""
    rows = [
        {
            "time": when(p.ts),
            "request_id": p.request_id,
            "version": p.model_version,
            "status": p.status,
            "latency_ms": p.latency_ms,
            "prediction": _text(p.prediction),
            "label": _text(p.label) if p.has_label else None,
            "features": orjson.dumps(p.features, option=orjson.OPT_NON_STR_KEYS).decode(),
        }
        for p in predictions
    ]
    columns = ["time", "request_id", "version", "status", "latency_ms", "prediction", "label", "features"]
    return pd.DataFrame(rows, columns=columns)


def filter_predictions(
    frame: pd.DataFrame, *, status: str = "all", version: str = "all", text: str = ""
) -> pd.DataFrame:
    """Rows matching a status, a model version and a substring of the request id, prediction or features."""
    keep = pd.Series(True, index=frame.index)
    if status != "all":
        keep &= frame["status"] == status
    if version != "all":
        keep &= frame["version"].fillna("unknown") == version
    if text:
        haystack = frame["request_id"] + " " + frame["prediction"].fillna("") + " " + frame["features"]
        keep &= haystack.str.contains(text, case=False, regex=False)
    return frame[keep]


def overview_table(rows: Sequence[ServiceHealth]) -> pd.DataFrame:
    """The overview grid: one row per service, worst first (the order of ``rows``)."""
    return pd.DataFrame([_overview_row(r) for r in rows], columns=OVERVIEW_COLUMNS)


OVERVIEW_COLUMNS = [
    "status",
    "service",
    "problems",
    "requests",
    "error rate",
    "p95 ms",
    "bound ms",
    "drift",
    "quality",
    "estimated",
    "baseline",
    "champion",
    "champion since",
    "open alerts",
    "last check",
    "last prediction",
]


def _overview_row(r: ServiceHealth) -> dict[str, object]:
    c = r.check
    return {
        "status": r.status,
        "service": r.name,
        "requests": r.traffic.requests,
        "error rate": r.traffic.error_rate,
        "p95 ms": r.traffic.p95_ms,
        "bound ms": r.latency_bound_ms,
        "drift": _drift_cell(c),
        "quality": c.quality if c else None,
        "estimated": c.estimated_quality if c else None,
        "baseline": c.baseline if c else None,
        "champion": r.champion or r.serving_version,
        "champion since": when(r.champion_since),
        "open alerts": r.open_alerts,
        "last check": when(c.created_at) if c else None,
        "last prediction": when(r.last_prediction_at),
        "problems": "; ".join(p.lstrip("!") for p in r.problems),
    }


def _drift_cell(check: CheckHeadline | None) -> str:
    if check is None:
        return "no checks yet"
    if check.drift_share is None:
        return check.verdict
    return f"{check.verdict} ({check.drift_share:.0%})"


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def alerts_table(alerts: Sequence[AlertRecord]) -> pd.DataFrame:
    """Alerts as a table, newest first."""
    rows = [
        {
            "id": a.id,
            "state": a.state,
            "severity": a.severity,
            "service": a.service,
            "rule": a.rule,
            "summary": a.summary,
            "value": a.value,
            "threshold": a.threshold,
            "started": when(a.started_at),
            "fired": when(a.fired_at),
            "resolved": when(a.resolved_at),
            "acked by": a.acked_by,
            "inhibited": f"inhibited by #{a.inhibited_by}" if a.inhibited_by is not None else None,
        }
        for a in alerts
    ]
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)


ALERT_COLUMNS = [
    "id", "state", "severity", "service", "rule", "summary", "value", "threshold", "started", "fired", "resolved",
    "acked by", "inhibited",
]  # fmt: skip


def silences_table(silences: Sequence[SilenceRecord]) -> pd.DataFrame:
    """Silences with their matchers and time span."""
    rows = [
        {
            "id": s.id,
            "matchers": ", ".join(f"{k}={v}" for k, v in s.matchers.items()),
            "starts": when(s.starts_at),
            "ends": when(s.ends_at),
            "created by": s.created_by,
            "comment": s.comment,
        }
        for s in silences
    ]
    return pd.DataFrame(rows, columns=["id", "matchers", "starts", "ends", "created by", "comment"])


def deliveries_table(deliveries: Sequence[Delivery]) -> pd.DataFrame:
    """The webhook delivery log: one row per event and receiver, its last attempt and each attempt's answer.

    ``tries`` reads like ``503 → 503 → 200`` (``–`` where no answer came: a timeout or a
    refused connection), oldest first, the newest ``ATTEMPTS_LISTED`` of them.
    """
    rows = [
        {
            "id": d.id,
            "created": when(d.created_at),
            "receiver": d.receiver,
            "event": d.event_type,
            "status": d.status,
            "attempts": d.attempts,
            "tries": " → ".join("–" if a.status_code is None else str(a.status_code) for a in d.attempt_log),
            "HTTP": d.last_status_code,
            "latency ms": d.last_latency_ms,
            "delivered": when(d.delivered_at),
            "next attempt": when(d.next_attempt_at) if d.status == "pending" else None,
            "error": d.last_error,
            "event id": d.event_id,
        }
        for d in deliveries
    ]
    columns = ["id", "created", "receiver", "event", "status", "attempts", "tries", "HTTP", "latency ms", "delivered"]
    return pd.DataFrame(rows, columns=[*columns, "next attempt", "error", "event id"])


def attempts_table(delivery: Delivery) -> pd.DataFrame:
    """Each attempt of one delivery, oldest first: when it started, the HTTP status, latency and error."""
    rows = [
        {
            "attempt": a.attempt,
            "started": when(a.started_at),
            "HTTP": a.status_code,
            "latency ms": a.latency_ms,
            "error": a.error,
        }
        for a in delivery.attempt_log
    ]
    return pd.DataFrame(rows, columns=["attempt", "started", "HTTP", "latency ms", "error"])


CONSUMER_COLUMNS = [
    "consumer",
    "stream",
    "durable",
    "records/s",
    "stored",
    "duplicates",
    "dead letters",
    "redelivered",
    "retried",
    "pending",
    "lag p99 s",
    "last seen",
]


def consumers_table(statuses: Sequence[ConsumerStatus]) -> pd.DataFrame:
    """One row per ``mlwatch consume`` process, from its latest heartbeat."""
    from monitor.stream.heartbeat import quantile

    rows = [
        {
            "consumer": c.consumer,
            "stream": c.stream,
            "durable": c.durable,
            "records/s": c.records_per_second,
            "stored": c.stored,
            "duplicates": c.duplicates,
            "dead letters": c.dead_lettered,
            "redelivered": c.redelivered,
            "retried": c.retried,
            "pending": c.pending,
            "lag p99 s": quantile(c.lag_buckets, 0.99) if c.lag_count else None,
            "last seen": when(c.updated_at),
        }
        for c in statuses
    ]
    return pd.DataFrame(rows, columns=CONSUMER_COLUMNS)
