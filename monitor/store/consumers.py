"""Heartbeats of the ``mlwatch consume`` processes: what each one did, read by /metrics and the dashboard.

A consumer and the server are different processes, often on different machines, and
several consumers share one durable consumer behind the same store. So each consumer
writes its own row here every few seconds (upserted by its name), and every server replica
reads the same rows: a scrape of any replica shows every consumer, as the rest of /metrics
does. A row whose ``updated_at`` stops moving is a consumer that stopped or died.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import orjson
from sqlalchemy import Engine, delete, select

from monitor.store import schema as t
from monitor.store.engine import upsert_insert, write_transaction


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    """One consumer's counters since it started, as of ``updated_at`` (epoch seconds)."""

    consumer: str  # host:pid
    stream: str
    durable: str
    started_at: float
    updated_at: float
    consumed: int = 0  # messages fetched
    stored: int = 0  # records new to the store
    duplicates: int = 0  # records the store had already
    dead_lettered: int = 0  # messages
    retried: int = 0  # messages handed back (store outage)
    redelivered: int = 0  # messages delivered more than once
    pending: int | None = None  # messages of the durable not delivered yet, as last seen; None: unknown
    records_per_second: float = 0.0  # records stored and found stored since the previous heartbeat
    lag_buckets: tuple[int, ...] = field(default=())  # publish-to-commit seconds, counts per bound (+Inf last)
    lag_sum: float = 0.0
    lag_last: float | None = None  # the largest lag of the last batch

    @property
    def lag_count(self) -> int:
        """Messages whose lag was measured."""
        return sum(self.lag_buckets)


_KEYS = ("consumer", "stream", "durable", "started_at", "updated_at")


class ConsumersMixin:
    """Store methods for consumer heartbeats: one upsert per heartbeat, one indexed read per scrape."""

    engine: Engine

    def record_consumer(self, status: ConsumerStatus) -> None:
        """Keep ``status`` as the latest heartbeat of ``status.consumer``."""
        row = asdict(status)
        keys = {k: row.pop(k) for k in _KEYS}
        table = t.stream_consumers
        with write_transaction(self.engine) as conn:
            stmt = upsert_insert(conn.dialect.name, table).values(**keys, stats=orjson.dumps(row).decode())
            stmt = stmt.on_conflict_do_update(
                index_elements=["consumer"],
                set_={name: stmt.excluded[name] for name in ("stream", "durable", "updated_at", "stats")},
            )
            conn.execute(stmt)

    def stream_consumers(self, since: float) -> list[ConsumerStatus]:
        """The consumers heard from at or after ``since``, by stream, durable and name."""
        table = t.stream_consumers
        query = (
            select(table).where(table.c.updated_at >= since).order_by(table.c.stream, table.c.durable, table.c.consumer)
        )
        with self.engine.connect() as conn:
            return [_status(row._mapping) for row in conn.execute(query)]

    def forget_consumers(self, before: float) -> int:
        """Delete the heartbeats older than ``before`` (consumers long gone); how many went."""
        table = t.stream_consumers
        with write_transaction(self.engine) as conn:
            return conn.execute(delete(table).where(table.c.updated_at < before)).rowcount


def _status(row: object) -> ConsumerStatus:
    values = dict(row)  # type: ignore[call-overload]
    stats = orjson.loads(values.pop("stats"))
    stats["lag_buckets"] = tuple(stats.get("lag_buckets") or ())
    known = set(ConsumerStatus.__dataclass_fields__)
    return ConsumerStatus(**values, **{k: v for k, v in stats.items() if k in known})
