"""Where rules read their metrics: a small protocol, and the store-backed source the worker uses.

A source lives for one tick and memoizes what it reads, so a thousand rules over a hundred
services cost one query per service and window, not one per rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from monitor.check_summary import CheckSummary
    from monitor.records import HostSample, Service
    from monitor.store import Store


@dataclass(frozen=True, slots=True)
class CheckView:
    """The parts of a service's latest drift/quality check that rules read."""

    model_version: str | None
    created_at: float
    status: str
    summary: CheckSummary
    features: list[dict[str, Any]] = field(default_factory=list)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class TrafficWindow:
    """Requests, errors and latency percentiles of a service over a window."""

    count: int
    errors: int
    percentiles_ms: dict[str, float]  # p50, p95, p99 where known

    @property
    def error_rate(self) -> float:
        """Errors over requests (0 without requests)."""
        return self.errors / self.count if self.count else 0.0


class MetricSource(Protocol):
    """What rule kinds read; the store implements it, tests may pass another."""

    def services(self) -> list[str]:
        """Names of every monitored service."""
        ...

    def latest_check(self, service: str) -> CheckView | None:
        """The newest check of ``service``, if any."""
        ...

    def traffic(self, service: str, start: float, end: float, model_version: str | None = None) -> TrafficWindow:
        """Traffic of ``service`` in ``[start, end)``."""
        ...

    def last_prediction_at(self, service: str) -> float | None:
        """When ``service`` last logged a prediction."""
        ...

    def host_samples(self, start: float, end: float, host: str | None = None) -> list[tuple[str, HostSample]]:
        """Agent samples in ``[start, end)`` as (host, sample)."""
        ...


class StoreMetricSource:
    """A ``MetricSource`` over the store, memoized for the life of one tick."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo: dict[tuple[Any, ...], Any] = {}

    def _cached(self, key: tuple[Any, ...], compute: Any) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _service(self, name: str) -> Service | None:
        """The registered service (all are read in one query, once per tick)."""
        found: dict[str, Service] = self._cached(("services",), self._all_services)
        return found.get(name)

    def _all_services(self) -> dict[str, Service]:
        return {s.name: s for s in self._store.list_services()}

    def services(self) -> list[str]:
        """Names of every registered service."""
        return sorted(self._cached(("services",), self._all_services))

    def latest_check(self, service: str) -> CheckView | None:
        """The newest check of ``service`` (None before its first check)."""
        return self._cached(("check", service), lambda: self._read_check(service))

    def _read_check(self, service: str) -> CheckView | None:
        svc = self._service(service)
        read = getattr(self._store, "latest_check", None)  # present once the checks capability is installed
        record = read(svc) if svc is not None and read is not None else None
        if record is None:
            return None
        features = list((record.results or {}).get("features") or [])
        return CheckView(record.model_version, record.created_at, record.status, record.summary, features, record.id)

    def traffic(self, service: str, start: float, end: float, model_version: str | None = None) -> TrafficWindow:
        """Traffic of ``service`` in the window, percentiles weighted by bucket counts."""
        key = ("traffic", service, start, end, model_version)
        return self._cached(key, lambda: self._read_traffic(service, start, end, model_version))

    def _read_traffic(self, service: str, start: float, end: float, model_version: str | None) -> TrafficWindow:
        svc = self._service(service)
        if svc is None:
            return TrafficWindow(0, 0, {})
        bucket = max(60, math.ceil((end - start) / 60) * 60)
        buckets = self._store.traffic_stats(svc, start, end, bucket, by_version=model_version is not None)
        if model_version is not None:
            buckets = [b for b in buckets if b.model_version == model_version]
        return merge_buckets(buckets)

    def last_prediction_at(self, service: str) -> float | None:
        """When ``service`` last logged a prediction (None if never or unknown)."""
        svc = self._service(service)
        if svc is None:
            return None
        return self._cached(("last", service), lambda: self._store.last_prediction_at(svc))

    def host_samples(self, start: float, end: float, host: str | None = None) -> list[tuple[str, HostSample]]:
        """Agent samples in the window (all hosts read once, then filtered)."""
        every = self._cached(("hosts", start, end), lambda: self._store.host_samples(start, end))
        return [pair for pair in every if host is None or pair[0] == host]


def merge_buckets(buckets: list[Any]) -> TrafficWindow:
    """Sum counts and take count-weighted percentiles of traffic buckets."""
    count = sum(b.count for b in buckets)
    errors = sum(b.errors for b in buckets)
    percentiles: dict[str, float] = {}
    for name in ("p50", "p95", "p99"):
        pairs = [(getattr(b, f"latency_{name}_ms"), b.count) for b in buckets]
        known = [(v, n) for v, n in pairs if v is not None and n]
        weight = sum(n for _, n in known)
        if weight:
            percentiles[name] = sum(v * n for v, n in known) / weight
    return TrafficWindow(count, errors, percentiles)
