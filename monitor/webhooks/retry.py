"""When to try a delivery again: exponential backoff with jitter, ``Retry-After``, and a horizon.

Retried: timeouts, connection errors, 408, 425, 429 and 5xx. Any other answer outside
2xx is final (the receiver rejected the event and would reject it again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 425, 429})


def is_retryable(status_code: int) -> bool:
    """True for statuses that mean "not now" rather than "never"."""
    return status_code in RETRYABLE_STATUS or status_code >= 500


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff ``initial * 2**(attempt-1)`` capped at ``maximum``, jittered to 50-100%, until ``horizon``."""

    initial: float = 2.0
    maximum: float = 600.0
    horizon: float = 24 * 3600.0

    def backoff(self, attempts: int, rng: Callable[[], float]) -> float:
        """The jittered delay after ``attempts`` failed attempts (equal jitter: half fixed, half random)."""
        base = min(self.maximum, self.initial * 2 ** max(0, attempts - 1))
        return base / 2 + base / 2 * rng()

    def next_attempt(
        self, *, created_at: float, now: float, attempts: int, retry_after: float | None, rng: Callable[[], float]
    ) -> float | None:
        """When to try again, or None when that would be past the horizon (the delivery then fails)."""
        delay = retry_after if retry_after is not None else self.backoff(attempts, rng)
        at = now + delay
        return None if at > created_at + self.horizon else at
