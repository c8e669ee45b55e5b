"""The background sender: drains the in-memory queue in batches, retries, spools, reports.

The serving thread calls ``offer`` only: a length check and a ``deque.append`` (atomic in
CPython), so it never blocks and never waits on the network. Everything else runs here.

What happens to a batch, by the answer it gets (``monitor.sdk.transport`` sorts them):

    2xx                delivered; the spooled batches follow, oldest first
    no answer, 408, 429, 503
                       spooled and retried with backoff (0.5 s doubling to 30 s, jittered)
                       for as long as the server is away
    any other 5xx      spooled and retried likewise, ``server_error_attempts`` times in all;
                       then split (``monitor.sdk.split``) to find the record(s) the server
                       fails on. Such a record goes to the quarantine only when the server,
                       asked right after, takes again a record it took before: an outage
                       that answers 500 to everything quarantines nothing. The rest of the
                       batch is delivered; what could not be settled goes to the back of
                       the spool, so that later batches are not stuck behind it.
    422, 413           split at once; the refused records go to the quarantine
    other 4xx          the batch goes to the quarantine (an unknown service, say)
    401, 403           the batch stays in the spool, in order, retried with backoff until a
                       valid token arrives (``Tracker.set_token``, or a token file re-read on
                       every refusal); one warning a minute at most meanwhile

Nothing the server refuses is retried forever or deleted unseen: it is kept in the
quarantine (``monitor.sdk.quarantine``, bounded: past it the oldest files go, counted), and
every outcome is counted in ``DeliveryStats``.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor.sdk.calls import CallTuple, Encoder, Json, RawCall
from monitor.sdk.quarantine import Quarantine
from monitor.sdk.split import Outcome, Split
from monitor.sdk.spool import Spool
from monitor.sdk.transport import Rejected, Retryable, ServerError, Transport, Unauthorized

log = logging.getLogger("monitor.sdk")
TOKEN_WARNING_INTERVAL = 60.0  # seconds: a refused token is worth one line a minute, not one a retry


@dataclass(frozen=True)
class DeliveryOptions:
    """How batches are formed and retried.

    ``server_error_attempts``: answers with a 5xx (other than 503) a batch gets, with
    backoff between them, before it is split to find the record(s) the server fails on.
    """

    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval: float = 1.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    server_error_attempts: int = 3


@dataclass(frozen=True)
class DeliveryStats:
    """Counters since the tracker started; drops are records that will never be delivered.

    ``rejected``: records the server refused with a 4xx (kept in the quarantine).
    ``quarantined``: records moved to the quarantine, the rejected ones and those that kept
    failing the server (5xx) on their own; ``quarantined_bytes`` is what it holds on disk,
    ``dropped_quarantine_full`` what its bound deleted. ``server_down``: the last attempt got
    no answer or a 5xx; ``token_refused``: it got a 401/403 (the records wait in the spool).
    ``dropped_spool_expired``: records that waited in the spool past its max age.
    ``spooled``: records written to the spool (the receiver away, a token refused, a
    write-ahead tracker); ``spooled_bytes`` is what waits there now.
    """

    queued: int
    sent: int
    rejected: int
    dropped_queue_full: int
    dropped_spool_full: int
    spooled_bytes: int
    unparsed_payloads: int
    server_down: bool
    quarantined: int
    quarantined_bytes: int
    dropped_quarantine_full: int
    token_refused: bool
    dropped_spool_expired: int = 0
    spooled: int = 0


class Delivery:
    """Owns the queue and the sender thread of one tracker."""

    def __init__(
        self,
        transport: Transport,
        encoder: Encoder,
        spool: Spool,
        quarantine: Quarantine,
        options: DeliveryOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport, self.encoder, self.options = transport, encoder, options
        self.spool, self.quarantine = spool, quarantine
        self._clock = clock
        self._queue: deque[CallTuple | RawCall] = deque()
        self._dropped_queue = 0
        self._sent = 0
        self._rejected = 0
        self._failures = 0
        self._retry_at = 0.0
        self._down = False
        self._striking = False  # a batch has 5xx attempts left: a flush waits for them
        self._token_refused = False
        self._token_warned = -math.inf
        self._taken: Json | None = None  # a record the server took: sent again, it shows the server works
        self._schema_wanted = False
        self._cycles = 0  # cycles ended; _begun: cycles begun (one more while one runs)
        # a retry asked for (flush, set_token) takes each time a new value of _asks; a cycle
        # that begins seeing one it has not seen drops the backoff, whatever the cycle in
        # flight when it was asked set: that one's attempt may have used the old token
        self._asks = itertools.count(1)
        self._asked = self._seen = 0
        self._start()
        own = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_in_child(own))

    def _start(self) -> None:
        self._begun = self._cycles  # a fork may have copied a cycle in flight: no thread runs it here
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

    def persist(self, item: CallTuple | RawCall) -> None:
        """Write one call to the spool before returning (``Tracker(write_ahead=True)``); the sender sends it.

        A full or read-only disk queues it instead, as ``offer`` does.
        """
        try:
            records = self.encoder.records([item])
            if records:
                self.spool.write(records)
        except OSError:
            log.warning("mlwatch: could not spool a call before returning; queued instead", exc_info=True)
            self.offer(item)

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
            server_down=self._down,
            quarantined=self.quarantine.added,
            quarantined_bytes=self.quarantine.size(),
            dropped_quarantine_full=self.quarantine.dropped,
            token_refused=self._token_refused,
            dropped_spool_expired=self.spool.expired,
            spooled=self.spool.written,
        )

    def learn_schema(self) -> None:
        """Read the service's schema in the sender thread, soon (the proxy asks at start)."""
        self._schema_wanted = True
        self._wake.set()

    def retry_now(self) -> None:
        """Send what waits at once, past the backoff (a new token has come)."""
        self._asked = next(self._asks)  # values never repeat: the sender sees a change however writes interleave
        self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Send what is queued and spooled now; True when nothing is left within ``timeout``.

        It waits for a whole cycle that began after this call (which retries the spool past
        any backoff), then for one look at the queue and the spool while no cycle runs: a
        batch the sender has claimed from the spool is not among its files while it is sent.
        """
        deadline = time.monotonic() + timeout
        self.retry_now()
        cycles = self._begun + 1  # read after the ask: that cycle begins after it, and sees it
        with self._progress:
            while True:
                if self._cycles >= cycles:
                    view = self._idle_view()
                    if view is not None and view[0]:
                        return not view[1]
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._progress.wait(min(left, 0.05))

    def close(self, timeout: float) -> None:
        """Flush, then stop the thread; what is still queued goes to the spool."""
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.transport.close()

    def _idle_view(self) -> tuple[bool, bool] | None:
        """(drained, spool pending) as seen while no cycle ran; None when one ran or began meanwhile."""
        begun = self._begun
        if self._cycles != begun:
            return None
        pending = self.spool.pending()
        waits = self._failures > 0 and not self._striking  # away or refusing the token: nothing to do now
        drained = not self._queue and (not pending or waits)
        if self._begun != begun:  # a cycle began during the look: it may have claimed a batch
            return None
        return drained, pending

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.options.flush_interval)
            self._wake.clear()
            self._cycle()
        self._spool_rest()

    def _cycle(self) -> None:
        self._begun += 1  # before the ask is read (see flush)
        asked = self._asked
        if asked != self._seen:
            self._seen, self._retry_at = asked, 0.0
        try:
            if self._schema_wanted:
                self._schema_wanted = False
                self.encoder.names.refresh()
            while self._queue:
                self._deliver(self.encoder.records(self._take()))
            self._retry_spool()
        except Exception:  # the sender thread must survive anything
            log.exception("mlwatch: sender error")
        finally:
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
        self._attempt(records, None, 0)

    def _retry_spool(self) -> None:
        while self._clock() >= self._retry_at:
            claimed = self.spool.claim()
            if claimed is None:
                return
            path, records = claimed
            if not self._attempt(records, path, self.spool.strikes(path)):
                return

    def _attempt(self, records: list[Json], claimed: Path | None, strikes: int) -> bool:
        """Send one batch, fresh or claimed from the spool; False when it has to wait.

        What waits is kept as it came, positional values unnamed: they are named when it is
        sent again, by the schema the server has then (it may not have answered for it now).
        """
        named = self.encoder.resolve(records)
        try:
            self._send(named)
        except Unauthorized as exc:
            self._keep(records, claimed, strikes)
            self._refused_token(exc)
            return False
        except ServerError as exc:
            return self._server_failed(records, named, claimed, strikes, exc)
        except Rejected as exc:
            return self._split(named, claimed, exc)
        except Retryable as exc:
            self._keep(records, claimed, strikes)
            self._failed(exc)
            return False
        self._forget(claimed)
        self._recovered()
        return True

    def _server_failed(
        self, records: list[Json], named: list[Json], claimed: Path | None, strikes: int, exc: ServerError
    ) -> bool:
        """A 5xx: spend one more attempt (``records`` wait as they came), then split ``named``; False: it waits."""
        budget = self.options.server_error_attempts
        left = strikes + 1 < budget
        if left or (strikes >= budget and self._taken is None):
            # attempts left; or split before, and with nothing taken since there is no telling a
            # poison record from an outage: one attempt a turn then, not another 2·log2(n)
            self._keep(records, claimed, min(strikes + 1, budget))
            self._failed(exc, striking=left)
            return False
        return self._split(named, claimed, exc)

    def _send(self, records: list[Json]) -> None:
        self.transport.send(records)
        self._sent += len(records)
        self._taken = records[-1]

    def _split(self, records: list[Json], claimed: Path | None, failure: ServerError | Rejected) -> bool:
        """Split a batch the server refused or kept failing; True when none of it has to wait."""
        alive = True if isinstance(failure, Rejected) else self._still_takes()
        if alive is False:  # it fails a record it took before: the server is broken, not this batch
            self._keep(records, claimed, self.options.server_error_attempts)
            self._failed(failure)
            return False
        outcome = Split(self._send, records, alive=bool(alive)).run(failure)
        for piece, exc in outcome.refused:
            self._rejected += len(piece)
            self.quarantine.put(piece, exc.status, str(exc))
        waiting = outcome.held + self._quarantine_failing(outcome)
        if waiting:  # to the back of the spool, split again once other batches were taken
            self.spool.write(waiting, strikes=self.options.server_error_attempts)
        self._forget(claimed)
        if isinstance(outcome.stopped, Unauthorized):
            self._refused_token(outcome.stopped)
        elif waiting:
            self._failed(outcome.stopped or failure)
        else:
            self._recovered()
        return not waiting

    def _quarantine_failing(self, outcome: Outcome) -> list[Json]:
        """Quarantine the records that failed the server alone, if it still works; else return them."""
        if not outcome.failing:
            return []
        records = [record for record, _ in outcome.failing]
        if outcome.stopped is not None or self._still_takes() is not True:
            return records
        status, reason = outcome.failing[0][1].status, str(outcome.failing[0][1])
        self.quarantine.put(records, status, f"{reason}, for this record alone, while the server takes others")
        return []

    def _still_takes(self) -> bool | None:
        """Whether the server takes again a record it took before (a no-op there: same request id).

        None when it has taken nothing yet, so there is nothing to ask with.
        """
        if self._taken is None:
            return None
        try:
            self.transport.send([self._taken])
        except (Retryable, Rejected):
            return False
        return True

    def _keep(self, records: list[Json], claimed: Path | None, strikes: int) -> None:
        if claimed is None:
            self.spool.write(records, strikes)
        else:
            self.spool.release(claimed, strikes)

    def _forget(self, claimed: Path | None) -> None:
        if claimed is not None:
            self.spool.done(claimed)

    def _failed(self, exc: Exception, *, striking: bool = False) -> None:
        if not self._down:
            log.warning("mlwatch: cannot deliver predictions (%s); spooling to %s", exc, self.spool.directory)
        self._down, self._token_refused, self._striking = True, False, striking
        self._back_off()

    def _refused_token(self, exc: Unauthorized) -> None:
        self._down, self._token_refused, self._striking = False, True, False
        self._back_off()
        now = self._clock()
        if now - self._token_warned >= TOKEN_WARNING_INTERVAL:
            self._token_warned = now
            log.warning(
                "mlwatch: the server refused the token (%s); predictions wait in %s until a valid token comes "
                "(Tracker.set_token, or the token file)",
                exc,
                self.spool.directory,
            )

    def _back_off(self) -> None:
        self._failures += 1
        # the exponent is capped: past 1024 failures (8.5 h offline at 30 s) 2.0 ** n overflows a float
        delay = min(self.options.backoff_max, self.options.backoff_initial * 2.0 ** min(self._failures - 1, 64))
        self._retry_at = self._clock() + delay * random.uniform(0.8, 1.2)

    def _recovered(self) -> None:
        if self._failures:
            log.warning("mlwatch: delivering again after %d failed attempt(s)", self._failures)
        self._failures, self._retry_at = 0, 0.0
        self._down = self._token_refused = self._striking = False

    def _spool_rest(self) -> None:
        while self._queue:
            records = self.encoder.records(self._take())
            if records:
                self.spool.write(records)


def _restart_in_child(own: weakref.ref[Delivery]) -> None:
    delivery = own()
    if delivery is not None and not delivery._stop.is_set():
        delivery.after_fork()
