"""Jobs (retrain and other long work): enqueue, claim, progress, cancel, finish.

At most one active job per (service, kind): ``enqueue_job`` checks and inserts under a
store lock (``LocksMixin.exclusive``), so two requests racing from two processes make one
job. Workers claim with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL and under the
write lock (``BEGIN IMMEDIATE``) on SQLite.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from monitor.errors import Conflict, NotFound, ValidationFailed
from monitor.records import ACTIVE_STATUSES, JOB_STATUSES, JobRecord
from monitor.store import schema as t
from monitor.store.codec import loads
from monitor.store.engine import write_transaction
from monitor.store.locks import LocksMixin
from monitor.store.storable import check_text, json_text, storable_message

LOG_TAIL_CHARS = 16_000
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


class JobsMixin(LocksMixin):
    """Store methods for the ``jobs`` table."""

    engine: Engine

    def enqueue_job(
        self, kind: str, service: str | None, params: dict[str, Any], created_by: str, *, now: float | None = None
    ) -> tuple[JobRecord, bool]:
        """Queue a job, or return the active one of the same kind and service; True when new."""
        check_text("kind", kind, 40)
        check_text("service", service)
        check_text("created_by", created_by)
        encoded = json_text("params", params)
        with self.exclusive(f"mlwatch.jobs:{kind}:{service}") as conn:
            active = _active(conn, kind, service)
            if active is not None:
                return active, False
            values = {
                "kind": kind,
                "service": service,
                "status": "queued",
                "params": encoded,
                "progress": 0.0,
                "log": "",
                "created_by": created_by,
                "created_at": time.time() if now is None else now,
                "cancel_requested": False,
            }
            key = conn.execute(t.jobs.insert().values(**values)).inserted_primary_key
            assert key is not None
            new_id = int(key[0])
            return _job(conn.execute(select(t.jobs).where(t.jobs.c.id == new_id)).one()), True

    def claim_job(
        self, worker: str, kinds: tuple[str, ...] = ("retrain",), *, now: float | None = None
    ) -> JobRecord | None:
        """Take the oldest queued job of ``kinds`` for ``worker`` (marks it running), or None."""
        now = time.time() if now is None else now
        j = t.jobs
        query = select(j.c.id).where(j.c.status == "queued", j.c.kind.in_(kinds)).order_by(j.c.created_at).limit(1)
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found = conn.execute(query).scalar()
            if found is None:
                return None
            conn.execute(
                update(j)
                .where(j.c.id == found)
                .values(status="running", started_at=now, heartbeat_at=now, claimed_by=worker)
            )
            return _job(conn.execute(select(j).where(j.c.id == found)).one())

    def get_job(self, job_id: int) -> JobRecord:
        """The job ``job_id``; NotFound if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"unknown job {job_id}; a retrain request answers with its job_id")
        return _job(row)

    def list_jobs(
        self, *, service: str | None = None, kind: str | None = None, since: float | None = None, limit: int = 50
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally of one service and kind, created since a time."""
        check_text("service", service)
        check_text("kind", kind)
        j = t.jobs
        query = select(j).order_by(j.c.id.desc()).limit(limit)
        if service is not None:
            query = query.where(j.c.service == service)
        if kind is not None:
            query = query.where(j.c.kind == kind)
        if since is not None:
            query = query.where(j.c.created_at >= since)
        with self.engine.connect() as conn:
            return [_job(r) for r in conn.execute(query)]

    def job_progress(
        self, job_id: int, *, progress: float | None = None, line: str | None = None, now: float | None = None
    ) -> bool:
        """Record progress (0..1) and a log line, beat the heartbeat; True when cancel was requested."""
        now = time.time() if now is None else now
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(t.jobs.c.log, t.jobs.c.cancel_requested).where(t.jobs.c.id == job_id)).first()
            if row is None:
                raise NotFound(f"unknown job {job_id}")
            values: dict[str, Any] = {"heartbeat_at": now}
            if progress is not None:
                values["progress"] = min(1.0, max(0.0, float(progress)))
            if line:
                stamp = time.strftime("%H:%M:%S", time.gmtime(now))
                values["log"] = (row.log + f"{stamp} {storable_message(line)}\n")[-LOG_TAIL_CHARS:]
            conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))
        return bool(row.cancel_requested)

    def finish_job(
        self,
        job_id: int,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> JobRecord:
        """Mark a job finished (succeeded, failed or cancelled); a finished job keeps its first outcome."""
        if status not in FINAL_STATUSES:
            raise ValidationFailed("status", f"expected one of {', '.join(FINAL_STATUSES)}, got {status!r}")
        now = time.time() if now is None else now
        values: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "result": json_text("result", result),
            "error": storable_message(error),
        }
        if status == "succeeded":
            values["progress"] = 1.0
        j = t.jobs
        with write_transaction(self.engine) as conn:
            conn.execute(update(j).where(j.c.id == job_id, j.c.status.in_(ACTIVE_STATUSES)).values(**values))
        return self.get_job(job_id)

    def cancel_job(self, job_id: int, *, now: float | None = None) -> JobRecord:
        """Cancel a queued job at once, or ask a running one to stop; Conflict if it already finished."""
        now = time.time() if now is None else now
        j = t.jobs
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(j.c.status).where(j.c.id == job_id)).first()
            if row is None:
                raise NotFound(f"unknown job {job_id}")
            if row.status not in ACTIVE_STATUSES:
                raise Conflict(f"job {job_id} already {row.status}; only queued or running jobs can be cancelled")
            values: dict[str, Any] = {"cancel_requested": True}
            if row.status == "queued":
                values.update(status="cancelled", finished_at=now, error="cancelled before it started")
            conn.execute(update(j).where(j.c.id == job_id).values(**values))
        return self.get_job(job_id)

    def fail_stale_jobs(self, heartbeat_timeout: float, *, now: float | None = None) -> list[int]:
        """Fail running jobs whose worker stopped beating for ``heartbeat_timeout`` seconds."""
        now = time.time() if now is None else now
        j = t.jobs
        stale = (j.c.status == "running", j.c.heartbeat_at < now - heartbeat_timeout)
        with write_transaction(self.engine) as conn:
            ids = [int(i) for i in conn.execute(select(j.c.id).where(*stale)).scalars()]
            if ids:
                message = f"worker stopped reporting for over {heartbeat_timeout:.0f}s; job abandoned"
                conn.execute(update(j).where(j.c.id.in_(ids)).values(status="failed", finished_at=now, error=message))
        return ids


def _active(conn: Connection, kind: str, service: str | None) -> JobRecord | None:
    j = t.jobs
    query = select(j).where(j.c.kind == kind, j.c.status.in_(ACTIVE_STATUSES)).order_by(j.c.id).limit(1)
    query = query.where(j.c.service.is_(None) if service is None else j.c.service == service)
    row = conn.execute(query).first()
    return None if row is None else _job(row)


def _job(row: Any) -> JobRecord:
    assert row.status in JOB_STATUSES, row.status
    return JobRecord(
        id=int(row.id),
        kind=row.kind,
        service=row.service,
        status=row.status,
        params=loads(row.params) or {},
        progress=float(row.progress),
        log=row.log,
        result=loads(row.result),
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        claimed_by=row.claimed_by,
        cancel_requested=bool(row.cancel_requested),
    )
