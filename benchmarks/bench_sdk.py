"""SDK cost on the serving thread per tracked prediction (20 features), and the SDK's import.

The tracked and untracked calls run interleaved in the same process, so both see the same
machine; the sender thread runs meanwhile (into an in-memory transport), as it would in a
service.

The sinks: the same ``tracker.log()`` publishing to NATS JetStream (the real server,
``MLWATCH_BENCH_NATS_URL``, default ``nats://127.0.0.1:4222``, into a stream of its own)
against posting to an HTTP receiver (a stub ingest API in a process of its own, answering
200), rounds interleaved; the sender thread publishes and waits for every ack meanwhile.
Both also show the records per second the sender got acknowledged, for information.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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


def _per_call_ns(fn: Callable[[dict[str, float]], int], features: dict[str, float], calls: int = CALLS) -> list[int]:
    clock = time.perf_counter_ns
    costs = []
    for _ in range(calls):
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


_STUB = """
import http.server, sys
class Ingest(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def _http_receiver() -> Iterator[str]:
    """A stub ingest API (200 to every POST) in a process of its own; yields its URL."""
    process = subprocess.Popen([sys.executable, "-c", _STUB], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{process.stdout.readline().strip()}"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def _nats_stream(url: str, service: str) -> Iterator[None]:
    """A stream of the benchmark's own on ``predictions.<service>``, deleted afterwards."""
    import nats

    name = f"BENCH_{service.replace('-', '_')}"

    async def call(action: Callable[[Any], Any]) -> None:
        nc = await nats.connect(url, max_reconnect_attempts=1)
        try:
            await action(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(call(lambda js: js.add_stream(name=name, subjects=[f"predictions.{service}"])))
    try:
        yield
    finally:
        asyncio.run(call(lambda js: js.delete_stream(name)))


def sink_cost(calls: int = CALLS, rounds: int = 3) -> list[Result]:
    """Serving-thread µs per ``tracker.log()`` with a NATS sink, against an HTTP sink in the same run."""
    features = {f"f{i}": i * 0.5 for i in range(20)}
    url = os.environ.get("MLWATCH_BENCH_NATS_URL", "nats://127.0.0.1:4222")
    service = f"bench-{uuid.uuid4().hex[:8]}"
    options = DeliveryOptions(queue_size=2 * calls, batch_size=500, flush_interval=0.05)
    with tempfile.TemporaryDirectory() as spool, _http_receiver() as http, _nats_stream(url, service):
        sinks = {"http": http, "nats": url}
        trackers = {
            kind: Tracker(service, sink=sink, spool_dir=Path(spool) / kind, options=options, flush_at_exit=False)
            for kind, sink in sinks.items()
        }
        try:
            costs, seconds = _interleaved(trackers, features, calls, rounds)
            for kind, tracker in trackers.items():
                assert tracker.stats().sent == rounds * calls, (kind, tracker.stats())
        finally:
            for tracker in trackers.values():
                tracker.close(timeout=10)
    rate = {kind: rounds * calls / seconds[kind] for kind in sinks}
    return [
        Result("sdk: log() per call, NATS sink, median (vs HTTP sink)", _quantile(costs["nats"], 0.5), "µs", "<= 5",
               baseline=_quantile(costs["http"], 0.5)),
        Result("sdk: log() per call, NATS sink, p99 (vs HTTP sink)", _quantile(costs["nats"], 0.99), "µs", "<= 20",
               baseline=_quantile(costs["http"], 0.99)),
        Result("sdk: records/s acknowledged by JetStream (vs HTTP 200s)", rate["nats"], "r/s", "",
               baseline=rate["http"]),
    ]  # fmt: skip


def _interleaved(
    trackers: dict[str, Tracker], features: dict[str, float], calls: int, rounds: int
) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Per-call ns of each tracker's ``log()``, rounds taken in turn, and the seconds until each round was acked."""
    costs: dict[str, list[int]] = {kind: [] for kind in trackers}
    seconds = dict.fromkeys(trackers, 0.0)
    for _ in range(rounds):  # interleaved, so that both see the same machine
        for kind, tracker in trackers.items():
            started = time.perf_counter()
            costs[kind] += _per_call_ns(lambda row, t=tracker: t.log(row, 1, latency_ms=1.0) and 0, features, calls)
            assert tracker.flush(120), tracker.stats()
            seconds[kind] += time.perf_counter() - started
    return costs, seconds


def main() -> list[Result]:
    return [*serving_cost(), *sink_cost(), *import_cost()]
