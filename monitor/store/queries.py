"""Reading back: traffic statistics from rollups, bounded uniform samples of a window."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, func, select

from monitor.records import HostSample, Service, StoredPrediction, TrafficBucket
from monitor.store import schema as t
from monitor.store.codec import loads
from monitor.store.latency import quantile

_HIST = t.HISTOGRAM_COLUMNS
_OVERSAMPLE = 1.25  # draw a little more than asked so that a sample rarely falls short


class QueriesMixin:
    """Store methods that read predictions, labels, traffic and host samples."""

    engine: Engine

    def traffic_stats(
        self, service: Service, start: float, end: float, bucket_seconds: int = 300, *, by_version: bool = False
    ) -> list[TrafficBucket]:
        """Per time bucket (and model version): count, errors, latency mean and p50/p95/p99."""
        if bucket_seconds < 60 or bucket_seconds % 60:
            raise ValueError(f"bucket_seconds must be a positive multiple of 60, got {bucket_seconds}")
        tm = t.traffic_minutes
        query = select(tm).where(
            tm.c.service_id == service.id, tm.c.minute >= math.floor(start / 60), tm.c.minute < math.ceil(end / 60)
        )
        groups: dict[tuple[float, str | None], list[Any]] = defaultdict(list)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                bucket = (row.minute * 60 // bucket_seconds) * bucket_seconds
                groups[(float(bucket), (row.model_version or None) if by_version else None)].append(row)
        return [_bucket(start_, version, rows) for (start_, version), rows in sorted(groups.items(), key=_order)]

    def last_prediction_at(self, service: Service) -> float | None:
        """Time of the newest stored prediction of ``service``."""
        p = t.predictions
        with self.engine.connect() as conn:
            hour = conn.execute(select(func.max(p.c.hour)).where(p.c.service_id == service.id)).scalar()
            if hour is None:
                return None
            return conn.execute(select(func.max(p.c.ts)).where(p.c.service_id == service.id, p.c.hour == hour)).scalar()

    def count_window(self, service: Service, start: float, end: float) -> int:
        """Number of predictions with ``start <= ts < end`` (an index-only count)."""
        p = t.predictions
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        p.c.service_id == service.id, _hours(start, end), p.c.ts >= start, p.c.ts < end
                    )
                ).scalar_one()
            )

    def sample_window(self, service: Service, start: float, end: float, limit: int) -> list[StoredPrediction]:
        """A uniform sample of at most ``limit`` predictions of the window, with their labels.

        Reads only about ``limit`` rows however large the window: rows carry a random
        ``sample_key``, and the index (service, hour, sample_key) answers
        ``sample_key < limit / count`` hour by hour.
        """
        total = self.count_window(service, start, end)
        wanted = min(limit, total)
        fraction = _OVERSAMPLE * limit / total if total else 1.0
        rows: list[Any] = []
        while total:
            rows = self._sample_rows(service, start, end, min(1.0, fraction))
            if len(rows) >= wanted or fraction >= 1.0:
                break
            fraction *= 2  # a small window can fall short of its expected size: widen and retry
        rows = sorted(rows, key=lambda r: r.sample_key)[:limit]
        return [_stored(r) for r in sorted(rows, key=lambda r: r.ts)]

    def _sample_rows(self, service: Service, start: float, end: float, fraction: float) -> list[Any]:
        p = t.predictions
        query = (
            _with_labels()
            .where(p.c.service_id == service.id, _hours(start, end), p.c.sample_key < fraction)
            .where(p.c.ts >= start, p.c.ts < end)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def recent_predictions(
        self, service: Service, limit: int = 100, *, since: float | None = None
    ) -> list[StoredPrediction]:
        """The newest predictions of ``service`` (since a time, default the last day), newest first."""
        newest = self.last_prediction_at(service)
        if newest is None:
            return []
        since = newest - 86400 if since is None else since
        p = t.predictions
        query = (
            _with_labels()
            .where(p.c.service_id == service.id, _hours(since, newest), p.c.ts >= since)
            .order_by(p.c.ts.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def host_samples(
        self, start: float, end: float, *, host: str | None = None, kind: str | None = None
    ) -> list[tuple[str, HostSample]]:
        """Agent samples in a time range, oldest first, as (host, sample)."""
        h = t.host_samples
        query = select(h).where(h.c.ts >= start, h.c.ts < end).order_by(h.c.ts)
        if host:
            query = query.where(h.c.host == host)
        if kind:
            query = query.where(h.c.kind == kind)
        with self.engine.connect() as conn:
            return [(r.host, HostSample(r.ts, r.kind, r.name, loads(r.metrics))) for r in conn.execute(query)]


_MAX_HOUR_LOOKUPS = 24 * 35


def _with_labels() -> Select[Any]:
    """Predictions with their label (NULL until one arrives), joined by service and request id."""
    p, lab = t.predictions, t.labels
    joined = p.outerjoin(lab, and_(lab.c.service_id == p.c.service_id, lab.c.request_id == p.c.request_id))
    return select(p, lab.c.label, lab.c.request_id.label("label_request_id")).select_from(joined)


def _hours(start: float, end: float) -> ColumnElement[bool]:
    """Condition on ``hour`` for a time range.

    Up to five weeks it lists the hours: equality lookups let the index then range on
    ``sample_key`` (or ``ts``) within each hour. Longer ranges use a plain range.
    """
    first, last = math.floor(start / 3600), math.floor(end / 3600)
    if last - first < _MAX_HOUR_LOOKUPS:
        return t.predictions.c.hour.in_(range(first, last + 1))
    return t.predictions.c.hour.between(first, last)


def _order(item: tuple[tuple[float, str | None], list[Any]]) -> tuple[float, str]:
    (start, version), _ = item
    return start, version or ""


def _bucket(start: float, version: str | None, rows: list[Any]) -> TrafficBucket:
    counts = [sum(getattr(r, h) for r in rows) for h in _HIST]
    latency_count = sum(r.latency_count for r in rows)
    return TrafficBucket(
        start=start,
        model_version=version,
        count=sum(r.count for r in rows),
        errors=sum(r.errors for r in rows),
        latency_mean_ms=sum(r.latency_sum for r in rows) / latency_count if latency_count else None,
        latency_p50_ms=quantile(counts, 0.50),
        latency_p95_ms=quantile(counts, 0.95),
        latency_p99_ms=quantile(counts, 0.99),
    )


def _stored(row: Any) -> StoredPrediction:
    return StoredPrediction(
        request_id=row.request_id,
        ts=row.ts,
        features=loads(row.features),
        prediction=loads(row.prediction),
        probabilities=loads(row.probabilities),
        latency_ms=row.latency_ms,
        model_version=row.model_version,
        status=row.status,
        label=loads(row.label),
        has_label=row.label_request_id is not None,
    )
