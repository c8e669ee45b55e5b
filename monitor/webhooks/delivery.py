"""The worker's sender: claims due outbox rows, posts them signed, and records every attempt.

    >>> Deliverer(store, settings).drain()   # deliver everything due now
    12

Deliveries go through ``GuardedTransport`` (``connection.py``): the address a request
connects to is the one that was checked, so DNS cannot steer a delivery to a private
network between the check and the connection. A refused address fails the row at once.

Each attempt is logged: on its row (attempt count, last status code, latency and error) and
as a row of its own (number, start, status code, latency, error), in one transaction. A row is
claimed with a lease longer than the time its batch can take, so a worker that dies
mid-delivery only delays it: once the lease expires another worker (or the restarted one)
sends it again with the same ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from monitor import __version__
from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.store.outbox import AttemptOutcome, Delivery
from monitor.webhooks.connection import AddressGuard, AddressRefused, GuardedTransport
from monitor.webhooks.formats import finished_body
from monitor.webhooks.retry import RetryPolicy, is_retryable, parse_retry_after
from monitor.webhooks.signing import sign


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered (status None when the request itself failed)."""

    status_code: int | None
    retry_after: str | None
    error: str | None
    latency_ms: float
    refused: bool = False
    started_at: float | None = None  # the clock when the request went out


def policy_of(hook: WebhookConfig) -> RetryPolicy:
    """The retry policy configured on a receiver."""
    return RetryPolicy(initial=hook.backoff_initial, maximum=hook.backoff_max, horizon=hook.retry_horizon)


class Deliverer:
    """Delivers the outbox: a few rows per receiver at a time, in parallel threads.

    ``http`` defaults to a client over ``GuardedTransport(guard)``; a client passed in is used
    as it is, so it must bring its own guard.
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
        concurrency: int = 8,
        batch: int = 32,
    ) -> None:
        self.store = store
        self.receivers = {h.name: h for h in settings.webhooks}
        self.guard = guard or AddressGuard(settings.allow_private_webhooks)
        self.http = http or httpx.Client(
            transport=GuardedTransport(self.guard), headers={"user-agent": f"mlwatch/{__version__}"}
        )
        self.clock = clock
        self.rng = rng
        self.environ = environ
        self.concurrency = concurrency
        self.batch = batch
        slowest = max((h.timeout for h in settings.webhooks), default=5.0)
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
        answer = dataclasses.replace(self.post(hook, delivery), started_at=started_at)
        return self.outcome(hook, delivery, answer)

    def post(self, hook: WebhookConfig, delivery: Delivery) -> Answer:
        """POST the row's body with fresh Standard Webhooks headers."""
        secret = self.environ.get(hook.secret_env) if hook.secret_env else None
        if hook.secret_env and not secret:
            return Answer(None, None, f"environment variable {hook.secret_env} (the signing secret) is not set", 0.0)
        try:
            body = finished_body(hook, delivery.payload, self.environ).encode()
        except ValueError as exc:  # a routing key not set: retried, so setting the variable is enough
            return Answer(None, None, str(exc), 0.0)
        try:
            signed = sign(secret, delivery.event_id, int(self.clock()), body)
        except ValueError as exc:  # a malformed whsec_ secret: retried, so fixing the variable is enough
            return Answer(None, None, f"{hook.secret_env}: {exc}", 0.0)
        headers = {"content-type": "application/json", **signed}
        started = time.perf_counter()
        try:
            response = self.http.post(hook.url, content=body, headers=headers, timeout=hook.timeout)
        except AddressRefused as exc:
            return Answer(None, None, f"refused: {exc}", _ms(started), refused=True)
        except httpx.HTTPError as exc:
            return Answer(None, None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))
        error = None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
        return Answer(response.status_code, response.headers.get("retry-after"), error, _ms(started))

    def outcome(self, hook: WebhookConfig, delivery: Delivery, answer: Answer) -> AttemptOutcome:
        """Delivered, retry later, or failed for good."""
        now = self.clock()
        code = answer.status_code
        if code is not None and 200 <= code < 300:
            return _record(delivery, "delivered", now, now, answer)
        if answer.refused or (code is not None and not is_retryable(code)):
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
        """Close the HTTP connection pool."""
        self.http.close()


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


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
