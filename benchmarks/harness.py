"""Small helpers the benchmarks share: timing, peak memory, and the results table."""

from __future__ import annotations

import resource
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """One measured figure, its target, and the baseline it is compared with."""

    name: str
    value: float
    unit: str
    target: str  # e.g. ">= 100000" or "<= 3"; "" for a figure shown for information
    baseline: float | None = None  # same unit, measured in the same run
    peak_mb: float | None = None

    @property
    def ok(self) -> bool:
        if not self.target:
            return True
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return self.value >= limit if op == ">=" else self.value <= limit

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the wall-clock seconds it took."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def traced_peak_mb(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` under tracemalloc; return its result and peak Python-heap MB during it."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak / 1e6


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(results: list[Result]) -> int:
    """Print the table; return 1 if any target was missed."""
    print(f"\n{'benchmark':58} {'value':>14} {'target':>14} {'vs baseline':>12} {'peak MB':>8}  ok")
    for r in results:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        peak = f"{r.peak_mb:.0f}" if r.peak_mb is not None else "-"
        target = r.target or "-"
        print(f"{r.name:58} {r.value:>10.4g} {r.unit:<3} {target:>14} {ratio:>12} {peak:>8}  {'yes' if r.ok else 'NO'}")
    return 0 if all(r.ok for r in results) else 1
