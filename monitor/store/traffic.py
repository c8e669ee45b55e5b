"""Traffic totals per service and model version, summed over the per-minute rollups (for /metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from monitor.store import schema as t

_HIST = t.HISTOGRAM_COLUMNS


@dataclass(frozen=True, slots=True)
class TrafficTotal:
    """Everything the rollups hold for one service and model version ('' when unknown)."""

    service: str
    model_version: str
    count: int
    errors: int
    latency_count: int
    latency_sum_ms: float
    histogram: tuple[int, ...]  # counts per bucket of ``monitor.store.latency.BOUNDS``


class TrafficMixin:
    """Store method that sums ``traffic_minutes`` (one indexed aggregate, however long the history)."""

    engine: Engine

    def traffic_totals(self) -> list[TrafficTotal]:
        """Totals per (service, model version), ordered by service name then version."""
        tm, s = t.traffic_minutes, t.services
        sums = [func.sum(tm.c[name]) for name in ("count", "errors", "latency_count", "latency_sum", *_HIST)]
        query = (
            select(s.c.name, tm.c.model_version, *sums)
            .select_from(tm.join(s, s.c.id == tm.c.service_id))
            .group_by(s.c.name, tm.c.model_version)
            .order_by(s.c.name, tm.c.model_version)
        )
        with self.engine.connect() as conn:
            return [_total(row) for row in conn.execute(query)]


def _total(row: tuple[object, ...]) -> TrafficTotal:
    name, version, count, errors, latency_count, latency_sum, *hist = row
    return TrafficTotal(
        service=str(name),
        model_version=str(version or ""),
        count=int(count or 0),  # type: ignore[call-overload]
        errors=int(errors or 0),  # type: ignore[call-overload]
        latency_count=int(latency_count or 0),  # type: ignore[call-overload]
        latency_sum_ms=float(latency_sum or 0.0),  # type: ignore[arg-type]
        histogram=tuple(int(h or 0) for h in hist),  # type: ignore[call-overload]
    )
