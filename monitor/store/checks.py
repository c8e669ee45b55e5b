"""Stored drift/quality checks and their on-demand Evidently reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Engine, func, select, update

from monitor.check_summary import CheckSummary
from monitor.errors import NotFound, ValidationFailed
from monitor.records import CheckRecord, SampledColumns, Service
from monitor.store import schema as t
from monitor.store.codec import loads
from monitor.store.engine import write_transaction
from monitor.store.storable import check_text, check_time, json_text, storable_message

CHECK_STATUSES = ("ok", "no_data", "error")
CHECK_TRIGGERS = ("schedule", "manual", "api")
_COLUMNS = [c for c in t.checks.c if c.name != "report_html"]


class ChecksMixin:
    """Store methods that record checks and read them back, newest first, and the check's read path."""

    engine: Engine
    _sampled_rows: Callable[[Service, float, float, int], list[Any]]  # from QueriesMixin

    def add_check(
        self,
        service: Service,
        *,
        window_start: float,
        window_end: float,
        model_version: str | None,
        status: str,
        trigger: str,
        summary: CheckSummary,
        results: dict[str, Any],
        error: str | None = None,
    ) -> int:
        """Store the outcome of one check; returns its id."""
        _expect("status", status, CHECK_STATUSES)
        _expect("trigger", trigger, CHECK_TRIGGERS)
        values = {
            "service_id": service.id,
            "window_start": check_time("window_start", window_start),
            "window_end": check_time("window_end", window_end),
            "created_at": time.time(),
            "model_version": check_text("model_version", model_version, 100),
            "status": status,
            "trigger": trigger,
            "summary": json_text("summary", summary.encode()),
            "results": json_text("results", results),
            "error": storable_message(error),
        }
        with write_transaction(self.engine) as conn:
            key = conn.execute(t.checks.insert().values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def get_check(self, check_id: int) -> CheckRecord:
        """The check with ``check_id``; NotFound if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS).where(t.checks.c.id == check_id)).first()
        if row is None:
            raise NotFound(f"unknown check {check_id}; list checks with GET /v1/services/{{service}}/checks")
        return _check(row)

    def list_checks(self, service: Service, *, limit: int = 50, since: float | None = None) -> list[CheckRecord]:
        """Checks of ``service``, newest first (by creation), optionally created since a time."""
        query = select(*_COLUMNS).where(t.checks.c.service_id == service.id)
        if since is not None:
            query = query.where(t.checks.c.created_at >= since)
        query = query.order_by(t.checks.c.created_at.desc(), t.checks.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_check(r) for r in conn.execute(query)]

    def latest_check(self, service: Service) -> CheckRecord | None:
        """The newest check of ``service``, if any."""
        found = self.list_checks(service, limit=1)
        return found[0] if found else None

    def sample_columns(self, service: Service, start: float, end: float, limit: int) -> SampledColumns:
        """The same uniform, bounded sample as ``sample_window``, decoded column by column in bulk.

        A check needs columns, not row objects: decoding each JSON column with one parser
        call instead of one per row halves the cost of reading a 20k-row sample.
        """
        rows = self._sampled_rows(service, start, end, limit)
        return SampledColumns(
            features=_decode([r.features for r in rows]),
            predictions=_decode([r.prediction for r in rows]),
            probabilities=_decode([r.probabilities for r in rows]),
            labels=_decode([r.label for r in rows]),
            has_label=[r.label_request_id is not None for r in rows],
            model_versions=[r.model_version for r in rows],
        )

    def last_label_received_at(self, service: Service) -> float | None:
        """When the newest label of ``service`` was received (the schedule re-checks windows after it)."""
        lab = t.labels
        with self.engine.connect() as conn:
            found = conn.execute(select(func.max(lab.c.received_at)).where(lab.c.service_id == service.id)).scalar()
        return None if found is None else float(found)

    def set_check_report(self, check_id: int, html: bytes) -> None:
        """Keep the rendered HTML report of a check."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(update(t.checks).where(t.checks.c.id == check_id).values(report_html=html))
        if not result.rowcount:
            raise NotFound(f"unknown check {check_id}")

    def check_report(self, check_id: int) -> bytes | None:
        """The kept HTML report of a check, or None if none was made yet; NotFound if no such check."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.checks.c.report_html).where(t.checks.c.id == check_id)).first()
        if row is None:
            raise NotFound(f"unknown check {check_id}")
        return None if row.report_html is None else bytes(row.report_html)


def _decode(texts: list[str | None]) -> list[Any]:
    """Parse a column of JSON texts (None stays None) with one parser call."""
    return list(orjson.loads("[" + ",".join("null" if x is None else x for x in texts) + "]"))


def _expect(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationFailed(field, f"expected one of {', '.join(allowed)}, got {value!r}")


def _check(row: Any) -> CheckRecord:
    return CheckRecord(
        id=row.id,
        service_id=row.service_id,
        window_start=row.window_start,
        window_end=row.window_end,
        created_at=row.created_at,
        model_version=row.model_version,
        status=row.status,
        trigger=row.trigger,
        summary=CheckSummary.decode(loads(row.summary)),
        results=loads(row.results),
        error=row.error,
    )
