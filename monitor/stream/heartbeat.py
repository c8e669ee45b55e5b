"""What a running consumer tells the store every few seconds: counters, backlog and lag.

``mlwatch consume`` and ``mlwatch server`` are different processes (often several of each,
on different machines), so a consumer's numbers reach ``/metrics`` and the dashboard
through the shared store: ``Heartbeat.beat`` upserts the consumer's ``ConsumerStatus`` row,
and every server replica reads the same rows. A consumer therefore needs no port of its own
to be scraped, and two consumers behind a load balancer show up as two series of one stream.

Lag is the time from the broker's receipt of a message (its publish time in JetStream) to
the moment its records were committed, kept as a cumulative histogram over ``LAG_BOUNDS_S``
so that Prometheus can take quantiles of it (``histogram_quantile``).
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from monitor.store.consumers import ConsumerStatus

log = logging.getLogger("mlwatch.consume")

LAG_BOUNDS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the lag histogram's buckets; one more bucket holds what is above."""
INTERVAL_S = 5.0
"""Seconds between heartbeats: a sixth of a typical 30 s scrape, one small upsert each."""
FORGET_AFTER_S = 7 * 86400.0
"""Heartbeats older than this are deleted when a consumer starts: consumers long gone."""
SHOWN_FOR_S = 3600.0
"""/metrics and the dashboard show the consumers heard from within this many seconds."""
T = TypeVar("T")


class LagHistogram:
    """Publish-to-commit seconds of every message stored, counted per bucket of ``LAG_BOUNDS_S``."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BOUNDS_S) + 1)
        self.total = 0.0
        self.last: float | None = None  # the largest lag of the last batch observed

    def observe(self, lags: Sequence[float]) -> None:
        """Count the lags of one batch."""
        if not lags:
            return
        for lag in lags:
            self.counts[bisect.bisect_left(LAG_BOUNDS_S, lag)] += 1
        self.total += sum(lags)
        self.last = max(lags)


def quantile(buckets: Sequence[int], q: float) -> float:
    """The upper bound of the bucket that holds quantile ``q`` (inf past the last bound), as
    Prometheus's ``histogram_quantile`` would round it up; nan when nothing was counted."""
    total = sum(buckets)
    if not total:
        return float("nan")
    seen = 0
    for bound, count in zip((*LAG_BOUNDS_S, float("inf")), buckets, strict=True):
        seen += count
        if seen >= q * total:
            return bound
    return float("inf")


def consumer_name() -> str:
    """``host:pid``: unique among the consumers running now, readable in a metric label."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Writes a consumer's status to the store every ``interval`` seconds (and once more at exit)."""

    def __init__(
        self,
        write: Callable[[ConsumerStatus], None],
        stream: str,
        durable: str,
        *,
        name: str | None = None,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.time,
        forget: Callable[[float], object] | None = None,
    ) -> None:
        self.write = write  # Store.record_consumer
        self._forget = forget  # Store.forget_consumers
        self.stream, self.durable = stream, durable
        self.name = name or consumer_name()
        self.interval, self.clock = interval, clock
        self.started_at = clock()
        self._last_at, self._last_records = self.started_at, 0
        self._failing = False

    def due(self) -> bool:
        """Whether ``interval`` seconds went by since the last heartbeat."""
        return self.clock() - self._last_at >= self.interval

    def forget(self, age: float = FORGET_AFTER_S) -> None:
        """Delete the heartbeats of consumers not heard from for ``age`` seconds (at the start)."""
        if self._forget is not None:
            self._attempt(self._forget, self.clock() - age)

    def beat(self, status: ConsumerStatus) -> None:
        """Write ``status``; a store that is down is said once, and the next beat tries again."""
        self._attempt(self.write, status)

    def _attempt(self, write: Callable[[T], object], value: T) -> None:
        from monitor.stream.consumer import OUTAGES

        try:
            write(value)
        except OUTAGES as exc:
            if not self._failing:
                log.warning("could not write the consumer's heartbeat (%s); its metrics wait for the store", exc)
            self._failing = True
            return
        if self._failing:
            log.info("the consumer's heartbeat is written again")
        self._failing = False

    def status(self, counters: dict[str, int], lag: LagHistogram, pending: int | None) -> ConsumerStatus:
        """The status to write now, from the consumer's counters, lag and last seen backlog."""
        now = self.clock()
        records = counters["stored"] + counters["duplicates"]
        rate = (records - self._last_records) / max(now - self._last_at, 1e-9)
        self._last_at, self._last_records = now, records
        return ConsumerStatus(
            self.name,
            self.stream,
            self.durable,
            self.started_at,
            now,
            **{k: v for k, v in counters.items() if k in ConsumerStatus.__dataclass_fields__},
            pending=pending,
            records_per_second=rate,
            lag_buckets=tuple(lag.counts),
            lag_sum=lag.total,
            lag_last=lag.last,
        )
