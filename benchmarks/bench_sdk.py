"""SDK cost on the serving thread per tracked prediction (20 features), and the SDK's import.

The tracked and untracked calls run interleaved in the same process, so both see the same
machine; the sender thread runs meanwhile (into an in-memory transport), as it would in a
service.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.harness import Result
from monitor.sdk import DeliveryOptions, Tracker

CALLS = 50_000
HEAVY = ("pandas", "numpy", "mlflow", "evidently", "streamlit", "pydantic", "sqlalchemy", "fastapi", "httpx")


class CountingTransport:
    """Accepts every batch in memory, like an ingest API that keeps up."""

    def __init__(self) -> None:
        self.records = 0

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        self.records += len(records)

    def close(self) -> None:
        pass

    def after_fork(self) -> None:
        pass


def _per_call_ns(fn: Callable[[dict[str, float]], int], features: dict[str, float]) -> list[int]:
    clock = time.perf_counter_ns
    costs = []
    for _ in range(CALLS):
        start = clock()
        fn(features)
        costs.append(clock() - start)
    return costs


def _quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def serving_cost() -> list[Result]:
    """Median and p99 µs added per tracked call, against the same function untracked."""
    features = {f"f{i}": i * 0.5 for i in range(20)}

    def predict(row: dict[str, float]) -> int:
        return 1 if row["f3"] > 1 else 0

    with tempfile.TemporaryDirectory() as spool:
        options = DeliveryOptions(queue_size=4 * CALLS, batch_size=1000, flush_interval=0.2)
        transport = CountingTransport()
        tracker = Tracker("bench", transport=transport, spool_dir=spool, options=options, flush_at_exit=False)
        tracked = tracker.track(predict)
        gc.collect()
        plain, with_sdk = [], []
        for _ in range(4):  # interleave rounds so both see the same conditions
            plain += _per_call_ns(predict, features)
            with_sdk += _per_call_ns(tracked, features)
            tracker.flush(30)
        explicit = _per_call_ns(lambda row: tracker.log(row, 1, latency_ms=1.0) and 0, features)
        tracker.close()
    base50, base99 = _quantile(plain, 0.5), _quantile(plain, 0.99)
    added50 = _quantile(with_sdk, 0.5) - base50
    added99 = _quantile(with_sdk, 0.99) - base99
    assert transport.records == 5 * CALLS, transport.records
    return [
        Result("sdk: decorator cost per call, median (20 features)", added50, "µs", "<= 5", baseline=base50),
        Result("sdk: decorator cost per call, p99 (20 features)", added99, "µs", "<= 20", baseline=base99),
        Result("sdk: tracker.log() per call, median (20 features)", _quantile(explicit, 0.5), "µs", "<= 5"),
        Result("sdk: tracker.log() per call, p99 (20 features)", _quantile(explicit, 0.99), "µs", "<= 20"),
    ]


def import_cost() -> list[Result]:
    """Import time of ``monitor.sdk`` in a fresh interpreter, and heavy modules it loaded."""
    code = (
        "import sys, time; t = time.perf_counter(); import monitor.sdk; d = time.perf_counter() - t; "
        f"print(d * 1000, sum(m in sys.modules for m in {HEAVY!r}))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in range(5)]
    values = [r.stdout.split() for r in runs]
    millis = statistics.median(float(v[0]) for v in values)
    heavy = max(int(v[1]) for v in values)
    return [
        Result("sdk: import monitor.sdk (fresh interpreter, median of 5)", millis, "ms", "<= 150"),
        Result("sdk: heavy libraries loaded by the import", heavy, "mods", "<= 0"),
    ]


def main() -> list[Result]:
    return [*serving_cost(), *import_cost()]
