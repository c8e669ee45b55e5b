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
from monitor.store.storable import check_text, check_time

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
        _check_window(start, end)
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
            minute = conn.execute(select(func.max(p.c.minute)).where(p.c.service_id == service.id)).scalar()
            if minute is None:
                return None
            return conn.execute(
                select(func.max(p.c.ts)).where(p.c.service_id == service.id, p.c.minute == minute)
            ).scalar()

    def count_window(self, service: Service, start: float, end: float) -> int:
        """Number of predictions with ``start <= ts < end``.

        The index counts the whole minutes inside the window; only the rows of the (at most
        two) minutes it cuts through are read, to compare their ``ts``.
        """
        _check_window(start, end)
        p = t.predictions
        first, last = _minute(start), _minute(end)
        inside = select(func.count()).where(p.c.service_id == service.id, p.c.minute > first, p.c.minute < last)
        edges = select(func.count()).where(
            p.c.service_id == service.id, p.c.minute.in_(sorted({first, last})), p.c.ts >= start, p.c.ts < end
        )
        with self.engine.connect() as conn:
            return int(conn.execute(inside).scalar_one()) + int(conn.execute(edges).scalar_one())

    def count_labelled(self, service: Service, start: float, end: float) -> int:
        """Number of predictions with ``start <= ts < end`` whose label has arrived."""
        _check_window(start, end)
        p, lab = t.predictions, t.labels
        joined = p.join(lab, and_(lab.c.service_id == p.c.service_id, lab.c.request_id == p.c.request_id))
        query = (
            select(func.count())
            .select_from(joined)
            .where(
                p.c.service_id == service.id,
                p.c.minute.between(_minute(start), _minute(end)),  # the index's range, then the exact times
                p.c.ts >= start,
                p.c.ts < end,
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def sample_window(self, service: Service, start: float, end: float, limit: int) -> list[StoredPrediction]:
        """A uniform sample of at most ``limit`` predictions of the window, with their labels.

        Reads only about ``limit`` rows however large the window: rows carry a random
        ``sample_key``, and the index (service, minute, sample_level) finds the rows with
        ``sample_key < limit / count`` among at most twice as many, minute by minute.
        """
        return [_stored(r) for r in sorted(self._sampled_rows(service, start, end, limit), key=lambda r: r.ts)]

    def _sampled_rows(self, service: Service, start: float, end: float, limit: int) -> list[Any]:
        """The rows of ``sample_window``'s sample (with their labels), by ``sample_key``."""
        total = self.count_window(service, start, end)
        fraction = _OVERSAMPLE * limit / total if total else 1.0
        rows: list[Any] = []
        while total:
            rows = self._sample_rows(service, start, end, min(1.0, fraction))
            if len(rows) >= min(limit, total) or fraction >= 1.0:
                break
            fraction *= 2  # a small window can fall short of its expected size: widen and retry
        return sorted(rows, key=lambda r: r.sample_key)[:limit]

    def _sample_rows(self, service: Service, start: float, end: float, fraction: float) -> list[Any]:
        """The window's rows with ``sample_key < fraction``, with their labels."""
        p = t.predictions
        query = _with_labels().where(
            p.c.service_id == service.id,
            p.c.sample_level >= _level_for(fraction),  # the index's share: 2**-level >= fraction
            p.c.sample_key < fraction,
            p.c.ts >= start,
            p.c.ts < end,
        )
        with self.engine.connect() as conn:
            return [row for minutes in _minute_lookups(start, end) for row in conn.execute(query.where(minutes))]

    def recent_predictions(
        self, service: Service, limit: int = 100, *, since: float | None = None
    ) -> list[StoredPrediction]:
        """The newest predictions of ``service`` (since a time, default the last day), newest first."""
        if since is not None:
            check_time("since", since)
        newest = self.last_prediction_at(service)
        if newest is None:
            return []
        since = newest - 86400 if since is None else since
        p = t.predictions
        query = (
            _with_labels()
            .where(p.c.service_id == service.id, p.c.minute.between(_minute(since), _minute(newest)))
            .where(p.c.ts >= since)
            .order_by(p.c.minute.desc(), p.c.ts.desc())  # the index gives minutes newest first
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def host_samples(
        self, start: float, end: float, *, host: str | None = None, kind: str | None = None
    ) -> list[tuple[str, HostSample]]:
        """Agent samples in a time range, oldest first, as (host, sample)."""
        _check_window(start, end)
        check_text("host", host)
        check_text("kind", kind)
        h = t.host_samples
        query = select(h).where(h.c.ts >= start, h.c.ts < end).order_by(h.c.ts)
        if host:
            query = query.where(h.c.host == host)
        if kind:
            query = query.where(h.c.kind == kind)
        with self.engine.connect() as conn:
            return [(r.host, HostSample(r.ts, r.kind, r.name, loads(r.metrics))) for r in conn.execute(query)]


_LOOKUP_MINUTES = 1440
"""Minutes per sampling query: each is an index lookup of its own, listed in the query."""
_MAX_LOOKUP_MINUTES = 1440 * 35
"""Longer windows are sampled by one range scan of the index instead."""


def _check_window(start: float, end: float) -> None:
    """ValidationFailed naming the bound that is no time (past year 9999, or NaN): its minute
    would overflow the index's BIGINT."""
    check_time("start", start)
    check_time("end", end)


def _with_labels() -> Select[Any]:
    """Predictions with their label (NULL until one arrives), joined by service and request id."""
    p, lab = t.predictions, t.labels
    joined = p.outerjoin(lab, and_(lab.c.service_id == p.c.service_id, lab.c.request_id == p.c.request_id))
    return select(p, lab.c.label, lab.c.request_id.label("label_request_id")).select_from(joined)


def _minute(ts: float) -> int:
    """The ``minute`` column's value for a time (as ingest computes it)."""
    return int(ts // 60)


def _level_for(fraction: float) -> int:
    """The largest sample level whose share, 2**-level, is still at least ``fraction``."""
    mantissa, exponent = math.frexp(min(1.0, fraction))
    return min(t.SAMPLE_LEVELS, -exponent + (mantissa == 0.5))


def _minute_lookups(start: float, end: float) -> list[ColumnElement[bool]]:
    """Conditions on ``minute`` that together cover a time range, a day of minutes each.

    Listing the minutes lets the index go straight to each minute's sampled levels; past
    five weeks the lists would be long, and one range scan of the index does better.
    """
    first, last = _minute(start), _minute(end)
    minute = t.predictions.c.minute
    if last - first >= _MAX_LOOKUP_MINUTES:
        return [minute.between(first, last)]
    return [
        minute.in_(range(day, min(day + _LOOKUP_MINUTES, last + 1))) for day in range(first, last + 1, _LOOKUP_MINUTES)
    ]


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
