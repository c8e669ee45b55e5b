"""What the overview shows, computed in plain Python (no Streamlit) so it is tested directly.

>>> window = TimeWindow.last(3600, now=time.time())
>>> rows = overview(store, window)          # one ServiceHealth per service, worst first
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, CheckSettings
from monitor.quality_metrics import display_name
from monitor.records import CheckRecord, Service, TrafficBucket
from monitor.store import Store
from monitor.store.alerts import AlertRecord

ALIAS_ACTIONS = ("alias.set", "alias.external_change")
"""Audit actions of alias moves by mlwatch and seen outside it (``retrain.registry.SET``/``EXTERNAL``)."""

RANGES: dict[str, float] = {
    "Last 15 minutes": 900,
    "Last hour": 3600,
    "Last 6 hours": 6 * 3600,
    "Last 24 hours": 86400,
    "Last 7 days": 7 * 86400,
    "Last 30 days": 30 * 86400,
}
"""Time ranges offered by every page, label -> seconds."""

DEFAULT_RANGE = "Last 24 hours"
"""The range of an install that has had traffic for a day or more (and of one with none yet)."""

_TARGET_POINTS = 120
_NICE_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def default_range(first_traffic: float | None, now: float) -> str:
    """The range pages open with: the shortest that shows all traffic since ``first_traffic``
    (within the last day), so a fresh install's charts are not one point at the right edge
    of an empty day; a day once there is more history, or none yet."""
    if first_traffic is None:
        return DEFAULT_RANGE
    age = (now - first_traffic) * 1.1  # a margin, so the first points are not on the left edge
    fitting = [label for label, seconds in RANGES.items() if seconds >= age and seconds <= RANGES[DEFAULT_RANGE]]
    return fitting[0] if fitting else DEFAULT_RANGE


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A time range ending at ``end`` and the chart bucket that gives about 120 points over it."""

    start: float
    end: float
    bucket_seconds: int

    @classmethod
    def last(cls, seconds: float, *, now: float | None = None) -> TimeWindow:
        """The window of the last ``seconds``, ending now (rounded up to the minute, for caching)."""
        end = 60.0 * math.ceil((time.time() if now is None else now) / 60.0)
        wanted = seconds / _TARGET_POINTS
        bucket = next((b for b in _NICE_BUCKETS if b >= wanted), _NICE_BUCKETS[-1])
        return cls(end - seconds, end, bucket)

    @property
    def whole(self) -> int:
        """A bucket size that puts every minute up to ``end`` into one bucket (rollups are epoch-aligned)."""
        return 60 * (math.ceil(self.end / 60) + 1)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Requests, errors and latency of one service over a window, from the per-minute rollups."""

    requests: int = 0
    errors: int = 0
    p95_ms: float | None = None
    mean_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        """Errors over requests; None without traffic."""
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One row of the overview: how a service is doing and what is wrong with it."""

    name: str
    task: str
    traffic: Traffic
    latency_bound_ms: float | None
    last_prediction_at: float | None
    serving_version: str | None
    check: CheckHeadline | None
    open_alerts: int = 0
    champion: str | None = None
    champion_since: float | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        """``critical``, ``warning``, ``ok`` or ``no data``: the overview's first column."""
        if not self.problems:
            return "ok" if self.traffic.requests else "no data"
        return "critical" if any(p.startswith("!") for p in self.problems) else "warning"

    @property
    def badness(self) -> tuple[int, int, int, str]:
        """Sort key: critical first, then more problems, then more open alerts."""
        rank = {"critical": 0, "warning": 1, "no data": 2, "ok": 3}[self.status]
        return rank, -len(self.problems), -self.open_alerts, self.name


_HEADLINE_ORDER = ("f1", "accuracy", "roc_auc", "r2", "rmse", "mae")


@dataclass(frozen=True, slots=True)
class CheckHeadline:
    """The parts of a drift/quality check the overview shows, quality reduced to one headline metric."""

    check_id: int
    created_at: float
    status: str
    drift_share: float | None
    dataset_drift: bool | None
    drifted_features: tuple[str, ...]
    metric: str | None
    quality: float | None
    estimated_quality: float | None
    baseline: float | None
    label_coverage: float | None
    decay: float | None = None
    """How much worse than the baseline the (realized, else estimated) quality is, relative; >0 is
    worse. The check's own decay (``monitor.check_summary``), so the overview and the alert agree."""
    drift_threshold: float | None = None
    """The share over which the dataset counts as drifted, when an alert rule sets it (else Evidently's verdict)."""

    @classmethod
    def of(cls, check: CheckRecord, metric: str | None = None) -> CheckHeadline:
        """The headline of ``check``, by ``metric`` (the gate's) when the check measured it."""
        s = check.summary
        headline = headline_metric(s, metric)
        quality = metric_value(s.quality, headline)
        return cls(
            check_id=check.id,
            created_at=check.created_at,
            status=check.status,
            drift_share=s.drift_share,
            dataset_drift=s.dataset_drift,
            drifted_features=s.drifted_features,
            metric=headline,
            quality=quality,
            estimated_quality=metric_value(s.estimated_quality, headline),
            baseline=metric_value(s.baseline, headline),
            label_coverage=s.label_coverage,
            decay=_relative_decay(s, headline, estimated=quality is None),
        )

    def judged_by(self, threshold: float | None) -> CheckHeadline:
        """This headline with dataset drift meaning a drift share over ``threshold`` (the service's
        ``drift_share`` alert rule), so the banner, the overview and the alert agree; unchanged
        (Evidently's own verdict) when no rule watches the service or the share is unknown."""
        if threshold is None or self.drift_share is None:
            return self
        return replace(self, dataset_drift=self.drift_share > threshold, drift_threshold=threshold)

    @property
    def verdict(self) -> str:
        """``drift``, ``no drift``, ``no data`` or ``error``."""
        if self.status != "ok":
            return self.status.replace("_", " ")
        return "drift" if self.dataset_drift else "no drift"


def _relative_decay(summary: CheckSummary, metric: str | None, *, estimated: bool) -> float | None:
    change = summary.decay_of(metric, estimated=estimated) if metric is not None else None
    return None if change is None else number(change.relative)


def drift_threshold(rules: Iterable[AlertRuleConfig], service: str) -> float | None:
    """The lowest threshold of the ``drift_share`` rules that watch ``service`` (by name or all services)."""
    found = [r.threshold for r in rules if r.kind == "drift_share" and r.service in (None, service)]
    return min(found) if found else None


def headline_metric(summary: CheckSummary, preferred: str | None = None) -> str | None:
    """The quality metric the overview shows: ``preferred`` (the gate's) when measured, else a usual one."""
    names: set[str] = set()
    for found in (summary.quality, summary.estimated_quality, summary.baseline):
        names.update(found or ())
    for name in (preferred, *_HEADLINE_ORDER):
        if name in names:
            return name
    return min(names) if names else None


def metric_value(metrics: Mapping[str, float] | None, name: str | None) -> float | None:
    """``metrics[name]`` as a finite float, when ``metrics`` has it."""
    if metrics is None or name is None:
        return None
    return number(metrics.get(name))


def number(value: object) -> float | None:
    """A finite float, or None for anything else (missing, NaN, text, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def traffic(store: Store, service: Service, window: TimeWindow) -> Traffic:
    """Totals over the window, read from the rollups (never a scan of predictions)."""
    buckets = store.traffic_stats(service, window.start, window.end, window.whole)
    return _total(buckets)


def _total(buckets: list[TrafficBucket]) -> Traffic:
    if not buckets:
        return Traffic()
    b = buckets[0]  # ``window.whole`` puts the whole window in one bucket
    return Traffic(b.count, b.errors, b.latency_p95_ms, b.latency_mean_ms)


def first_traffic(store: Store, services: Iterable[Service], since: float, now: float) -> float | None:
    """The first minute with traffic after ``since`` across ``services``, from the rollups: the first
    hour with any, then the first minute within it (two small reads per service, never a scan)."""
    firsts = []
    for service in services:
        hours = [b.start for b in store.traffic_stats(service, since, now, 3600) if b.count]
        if hours:
            minutes = store.traffic_stats(service, max(since, min(hours)), min(hours) + 3600, 60)
            firsts.append(min((b.start for b in minutes if b.count), default=min(hours)))
    return min(firsts, default=None)


def serving_version(store: Store, service: Service, newest: float | None) -> str | None:
    """The model version of the newest prediction (an indexed lookup of the last few rows, not a scan)."""
    if newest is None:
        return None
    found = store.recent_predictions(service, 1, since=newest)
    return found[0].model_version if found else None


def problems(health: ServiceHealth) -> tuple[str, ...]:
    """What is wrong, worst marked with ``!``: slow, failing, drifting, decaying, silent, alerting."""
    found: list[str] = []
    t = health.traffic
    if t.p95_ms is not None and health.latency_bound_ms and t.p95_ms > health.latency_bound_ms:
        found.append(f"!p95 {t.p95_ms:.0f} ms over its {health.latency_bound_ms:.0f} ms bound")
    if t.error_rate is not None and t.error_rate >= 0.05:
        found.append(f"!{t.error_rate:.1%} errors")
    elif t.error_rate:
        found.append(f"{t.error_rate:.1%} errors")
    found.extend(_check_problems(health.check))
    if health.open_alerts:
        found.append(f"!{health.open_alerts} open alert(s)")
    return tuple(found)


def _check_problems(check: CheckHeadline | None) -> list[str]:
    if check is None:
        return []
    if check.status == "error":
        return ["last check failed"]
    found = []
    if check.dataset_drift:
        share = f" ({check.drift_share:.0%} of features)" if check.drift_share is not None else ""
        found.append(f"!data drift{share}")
    if check.decay is not None and check.decay > 0.05:
        found.append(f"{display_name(check.metric or '')} {check.decay:.0%} worse than its baseline")
    return found


def service_health(
    store: Store,
    service: Service,
    window: TimeWindow,
    *,
    check: CheckRecord | None = None,
    open_alerts: int = 0,
    champion: tuple[str, float] | None = None,
    metric: str | None = None,
    drift_share_threshold: float | None = None,
) -> ServiceHealth:
    """The overview row of ``service``; what other capabilities know is passed in."""
    bound = CheckSettings.of(service).latency_bound_ms
    newest = store.last_prediction_at(service)
    health = ServiceHealth(
        name=service.name,
        task=service.task,
        traffic=traffic(store, service, window),
        latency_bound_ms=bound,
        last_prediction_at=newest,
        serving_version=serving_version(store, service, newest),
        check=CheckHeadline.of(check, metric).judged_by(drift_share_threshold) if check else None,
        open_alerts=open_alerts,
        champion=champion[0] if champion else None,
        champion_since=champion[1] if champion else None,
    )
    return _with_problems(health)


def _with_problems(health: ServiceHealth) -> ServiceHealth:
    return replace(health, problems=problems(health))


def champion_of(store: Store, service: str) -> tuple[str, float] | None:
    """The champion version of ``service`` and since when, from the alias history in the audit log.

    Read from the store, not MLflow, so the overview stays fast; the models page asks MLflow.
    """
    moves = [e for action in ALIAS_ACTIONS for e in store.audit_entries(action=action, target=service, limit=50)]
    for entry in sorted(moves, key=lambda e: (e.ts, e.id), reverse=True):
        if entry.details.get("alias") == "champion":
            to = entry.details.get("to")
            return (str(to), entry.ts) if to else None
    return None


def open_alert_counts(alerts: list[AlertRecord]) -> dict[str, int]:
    """Firing alerts per service."""
    counts: dict[str, int] = {}
    for alert in alerts:
        if alert.state == "firing" and alert.service:
            counts[alert.service] = counts.get(alert.service, 0) + 1
    return counts


def worst_first(rows: list[ServiceHealth]) -> list[ServiceHealth]:
    """The overview's order: the services that need attention first."""
    return sorted(rows, key=lambda r: r.badness)
