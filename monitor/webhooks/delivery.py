"""The worker's sender: claims due outbox rows, sends them, and records every attempt.

    >>> Deliverer(store, settings).drain()   # deliver everything due now
    12

A row goes out through the transport of its receiver's URL (``transports.py``): signed HTTP
POSTs for ``http(s)://`` receivers, SMTP for ``smtp(s)://`` (format ``email``). Both connect
only to addresses the guard checked (``connection.py``), so DNS cannot steer a delivery to
a private network between the check and the connection; a refused address fails the row at
once. Retries, the horizon and the attempt log are the same for every transport.

Each attempt is logged: on its row (attempt count, last status code, latency and error) and
as a row of its own (number, start, status code, latency, error), in one transaction. A row is
claimed with a lease longer than the time its batch can take, so a worker that dies
mid-delivery only delays it: once the lease expires another worker (or the restarted one)
sends it again with the same ``webhook-id`` (an email with the same ``Message-ID``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import httpx

from monitor import __version__
from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.store.outbox import AttemptOutcome, Delivery
from monitor.webhooks.connection import AddressGuard, GuardedTransport
from monitor.webhooks.retry import RetryPolicy, parse_retry_after
from monitor.webhooks.smtp import SmtpTransport
from monitor.webhooks.transports import Answer, HttpTransport, Transport, longest_attempt, transport_name


def policy_of(hook: WebhookConfig) -> RetryPolicy:
    """The retry policy configured on a receiver."""
    return RetryPolicy(initial=hook.backoff_initial, maximum=hook.backoff_max, horizon=hook.retry_horizon)


class Deliverer:
    """Delivers the outbox: a few rows per receiver at a time, in parallel threads.

    ``http`` defaults to a client over ``GuardedTransport(guard)``; a client passed in is used
    as it is, so it must bring its own guard. ``smtp`` defaults to an ``SmtpTransport`` over
    the same guard (pass one with an ``ssl_context`` to trust a private CA).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        environ: Mapping[str, str] = os.environ,
        guard: AddressGuard | None = None,
        smtp: Transport | None = None,
        concurrency: int = 8,
        batch: int = 32,
    ) -> None:
        self.store = store
        self.receivers = {h.name: h for h in settings.webhooks}
        self.guard = guard or AddressGuard(settings.allow_private_webhooks)
        self.http = http or httpx.Client(
            transport=GuardedTransport(self.guard), headers={"user-agent": f"mlwatch/{__version__}"}
        )
        self.transports: dict[str, Transport] = {
            "http": HttpTransport(self.http, environ, clock),
            "smtp": smtp or SmtpTransport(self.guard, environ),
        }
        self.clock = clock
        self.rng = rng
        self.concurrency = concurrency
        self.batch = batch
        slowest = max((longest_attempt(h) for h in settings.webhooks), default=5.0)
        self.lease = math.ceil(batch / concurrency) * slowest + 5.0

    def run_once(self) -> list[AttemptOutcome]:
        """Claim one batch of due rows, send them, record the outcomes."""
        claimed = self.store.claim_deliveries(self.clock(), limit=self.batch, lease=self.lease)
        if not claimed:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(claimed))) as pool:
            outcomes = list(pool.map(self.attempt, claimed))
        self.store.record_attempts(outcomes)
        return outcomes

    def drain(self, budget_seconds: float = 10.0) -> int:
        """Run batches until nothing is due or the time budget is spent; returns attempts made."""
        deadline = time.monotonic() + budget_seconds
        made = 0
        while time.monotonic() < deadline:
            done = self.run_once()
            if not done:
                break
            made += len(done)
        return made

    def attempt(self, delivery: Delivery) -> AttemptOutcome:
        """Send one row once and decide what becomes of it."""
        hook = self.receivers.get(delivery.receiver)
        if hook is None:
            reason = f"receiver {delivery.receiver!r} is no longer configured"
            now = self.clock()
            return AttemptOutcome(delivery.id, "failed", now, now, error=reason, attempt=delivery.attempts)
        started_at = self.clock()
        answer = self.transports[transport_name(hook.url)].send(hook, delivery)
        answer = dataclasses.replace(answer, started_at=started_at)
        return self.outcome(hook, delivery, answer)

    def outcome(self, hook: WebhookConfig, delivery: Delivery, answer: Answer) -> AttemptOutcome:
        """Delivered, retry later, or failed for good."""
        now = self.clock()
        if answer.delivered:
            return _record(delivery, "delivered", now, now, answer)
        if answer.final:
            return _record(delivery, "failed", now, now, answer)
        retry_after = parse_retry_after(answer.retry_after, now)
        at = policy_of(hook).next_attempt(
            created_at=delivery.created_at, now=now, attempts=delivery.attempts, retry_after=retry_after, rng=self.rng
        )
        if at is None:
            why = f"gave up after {delivery.attempts} attempts (retry horizon passed); last: {answer.error}"
            return _record(delivery, "failed", now, now, answer, why)
        return _record(delivery, "pending", now, at, answer)

    def close(self) -> None:
        """Close every transport's connections."""
        for transport in self.transports.values():
            transport.close()


def _record(
    delivery: Delivery, status: str, now: float, next_at: float, answer: Answer, error: str | None = None
) -> AttemptOutcome:
    return AttemptOutcome(
        delivery.id,
        status,
        now,
        next_at,
        answer.status_code,
        error or answer.error,
        answer.latency_ms,
        attempt=delivery.attempts,
        started_at=answer.started_at,
    )
