"""The background sender: drains the in-memory queue in batches, retries, spools, reports.

The serving thread calls ``offer`` only: a length check and a ``deque.append`` (atomic in
CPython), so it never blocks and never waits on the network. Everything else runs here.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from monitor.sdk.calls import CallTuple, Encoder, Json, RawCall
from monitor.sdk.spool import Spool
from monitor.sdk.transport import Rejected, Retryable, Transport

log = logging.getLogger("monitor.sdk")


@dataclass(frozen=True)
class DeliveryOptions:
    """How batches are formed and retried."""

    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval: float = 1.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


@dataclass(frozen=True)
class DeliveryStats:
    """Counters since the tracker started; drops are records that will never be delivered."""

    queued: int
    sent: int
    rejected: int
    dropped_queue_full: int
    dropped_spool_full: int
    spooled_bytes: int
    unparsed_payloads: int
    server_down: bool


class Delivery:
    """Owns the queue and the sender thread of one tracker."""

    def __init__(
        self,
        transport: Transport,
        encoder: Encoder,
        spool: Spool,
        options: DeliveryOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport, self.encoder, self.spool, self.options = transport, encoder, spool, options
        self._clock = clock
        self._queue: deque[CallTuple | RawCall] = deque()
        self._dropped_queue = 0
        self._sent = 0
        self._rejected = 0
        self._failures = 0
        self._retry_at = 0.0
        self._cycles = 0
        self._start()
        own = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_in_child(own))

    def _start(self) -> None:
        self._busy = False
        self._drop_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="mlwatch-sender", daemon=True)
        self._thread.start()

    def after_fork(self) -> None:
        """In a forked child (gunicorn, multiprocessing): a sender of its own; the parent's queue stays the parent's."""
        self._queue.clear()
        self.transport.after_fork()
        self._start()

    def offer(self, item: CallTuple | RawCall) -> None:
        """Queue one call without blocking; a full queue counts a drop."""
        if len(self._queue) < self.options.queue_size:
            self._queue.append(item)
        else:
            with self._drop_lock:
                self._dropped_queue += 1

    def stats(self) -> DeliveryStats:
        """A snapshot of the counters."""
        return DeliveryStats(
            queued=len(self._queue),
            sent=self._sent,
            rejected=self._rejected,
            dropped_queue_full=self._dropped_queue,
            dropped_spool_full=self.spool.dropped,
            spooled_bytes=self.spool.size(),
            unparsed_payloads=self.encoder.unparsed,
            server_down=self._failures > 0,
        )

    def flush(self, timeout: float) -> bool:
        """Send what is queued and spooled now; True when nothing is left within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0
        cycles = self._cycles + (2 if self._busy else 1)  # a whole cycle that began after this call
        with self._progress:
            while self._cycles < cycles or not self._drained():
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._progress.wait(min(left, 0.05))
        return not self.spool.pending()

    def close(self, timeout: float) -> None:
        """Flush, then stop the thread; what is still queued goes to the spool."""
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.transport.close()

    def _drained(self) -> bool:
        return not self._queue and not self._busy and (not self.spool.pending() or self._failures > 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.options.flush_interval)
            self._wake.clear()
            self._cycle()
        self._spool_rest()

    def _cycle(self) -> None:
        self._busy = True
        try:
            while self._queue:
                self._deliver(self.encoder.records(self._take()))
            self._retry_spool()
        except Exception:  # the sender thread must survive anything
            log.exception("mlwatch: sender error")
        finally:
            self._busy = False
            self._cycles += 1
            with self._progress:
                self._progress.notify_all()

    def _take(self) -> list[CallTuple | RawCall]:
        batch: list[CallTuple | RawCall] = []
        popleft = self._queue.popleft
        for _ in range(min(self.options.batch_size, len(self._queue))):
            batch.append(popleft())
        return batch

    def _deliver(self, records: list[Json]) -> None:
        if not records:
            return
        if self._clock() < self._retry_at or self.spool.pending():
            self.spool.write(records)  # keep order: older spooled batches go first
            return
        try:
            self._send(records)
            self._recovered()
        except Retryable as exc:
            self.spool.write(records)
            self._failed(exc)

    def _retry_spool(self) -> None:
        while self._clock() >= self._retry_at:
            claimed = self.spool.claim()
            if claimed is None:
                return
            path, records = claimed
            try:
                self._send(records)
            except Retryable as exc:
                self.spool.release(path)
                self._failed(exc)
                return
            self.spool.done(path)
            self._recovered()

    def _send(self, records: list[Json]) -> None:
        """Send; on a 4xx split the batch so that only the refused records are dropped."""
        try:
            self.transport.send(records)
            self._sent += len(records)
        except Rejected as exc:
            if len(records) == 1 or exc.status != 422:
                self._rejected += len(records)
                log.warning("mlwatch: the server refused %d record(s), dropped: %s", len(records), exc.message)
                return
            half = len(records) // 2
            self._send(records[:half])
            self._send(records[half:])

    def _failed(self, exc: Exception) -> None:
        if self._failures == 0:
            log.warning("mlwatch: cannot deliver predictions (%s); spooling to %s", exc, self.spool.directory)
        self._failures += 1
        delay = min(self.options.backoff_max, self.options.backoff_initial * 2 ** (self._failures - 1))
        self._retry_at = self._clock() + delay * random.uniform(0.8, 1.2)

    def _recovered(self) -> None:
        if self._failures:
            log.warning("mlwatch: delivering again after %d failed attempt(s)", self._failures)
        self._failures = 0
        self._retry_at = 0.0

    def _spool_rest(self) -> None:
        while self._queue:
            records = self.encoder.records(self._take())
            if records:
                self.spool.write(records)


def _restart_in_child(own: weakref.ref[Delivery]) -> None:
    delivery = own()
    if delivery is not None and not delivery._stop.is_set():
        delivery.after_fork()
