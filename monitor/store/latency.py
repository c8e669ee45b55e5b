"""Log-spaced latency histogram shared by the rollup table, /stats and /metrics.

Bucket ``i`` holds latencies in ``(BOUNDS[i-1], BOUNDS[i]]`` ms; the last one is open.
Bounds grow by 2**(1/3), so every third bound is a power-of-two multiple of 0.1 ms: those
are the Prometheus ``le`` buckets, which therefore sum exactly from the fine ones.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from monitor.store.schema import LATENCY_BUCKETS

_BASE_MS = 0.1
_FACTOR = 2 ** (1 / 3)
BOUNDS: tuple[float, ...] = tuple(_BASE_MS * _FACTOR**i for i in range(LATENCY_BUCKETS - 1))
PROMETHEUS_BOUNDS_MS: tuple[float, ...] = BOUNDS[::3]


def bucket_of(latency_ms: float) -> int:
    """Index of the histogram bucket that holds ``latency_ms``."""
    return bisect.bisect_left(BOUNDS, latency_ms)


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) interpolated log-linearly inside its bucket; None if empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            return _interpolate(i, (rank - seen) / count)
        seen += count
    return BOUNDS[-1]


def _interpolate(i: int, fraction: float) -> float:
    if i == 0:
        return BOUNDS[0] * fraction
    if i >= len(BOUNDS):
        return BOUNDS[-1]
    low, high = BOUNDS[i - 1], BOUNDS[i]
    return math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))
