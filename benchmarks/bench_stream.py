"""Through NATS JetStream into PostgreSQL with 2 ``mlwatch consume`` processes, against the HTTP API.

A publisher process offers ``MLWATCH_BENCH_STREAM_RATE`` rows/s (default 55,000) for
``MLWATCH_BENCH_STREAM_SECONDS`` (default 60) as messages of ``RECORDS_PER_MESSAGE`` 20-feature
records on ``predictions.bench``, paced every 10 ms; two consumer processes share one durable
consumer and write to one PostgreSQL store. Figures: the rows/s from the first publish to the
commit of the last row (what the consumers sustained; at most the offered rate), the p99 of
the publish-to-commit lag from the consumers' own histograms (``mlwatch_stream_lag_seconds``,
read from their heartbeats: a bucket's upper bound, as ``histogram_quantile`` rounds), and for
information the load split between the two consumers. The baseline is the HTTP API path of
``bench_ingest`` (batches of 500, 4 clients, 1 server worker, as its PostgreSQL round) into
PostgreSQL in the same run.
Every row published must be stored exactly once; a shortfall fails the run.
Targets (issue 17): >= 50,000 rows/s sustained, lag p99 <= 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks.bench_ingest import FEATURES, _api_round, _postgres_schema
from benchmarks.harness import Result
from monitor.records import Feature
from monitor.store import Store
from monitor.stream.heartbeat import quantile
from tests.stream.conftest import _nats_problem

RECORDS_PER_MESSAGE = 100
CONSUMERS = 2
FETCH_BATCH = 100  # messages per fetch: 10,000 records, one store write (max_batch_records)
SUBJECT = "predictions.bench"
STREAM_PREFIX = "BENCH_"  # each run's stream: BENCH_<8 hex digits>


def nats_url() -> str:
    """The NATS server with JetStream: ``MLWATCH_TEST_NATS_URL``, as the stream tests use."""
    return os.environ.get("MLWATCH_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass(frozen=True)
class Plan:
    """What to offer: rows per second for so many seconds, and how many rows the API baseline posts."""

    rate: int = field(default_factory=lambda: int(os.environ.get("MLWATCH_BENCH_STREAM_RATE", "55000")))
    seconds: float = field(default_factory=lambda: float(os.environ.get("MLWATCH_BENCH_STREAM_SECONDS", "60")))
    api_rows: int = 100_000

    @property
    def messages(self) -> int:
        """Messages the publisher sends in all."""
        return max(1, round(self.rate * self.seconds / RECORDS_PER_MESSAGE))


def _body(message: int) -> bytes:
    """One message of ``RECORDS_PER_MESSAGE`` records, request ids ``s<message>-<n>``, stamped now
    (as the SDK stamps each prediction)."""
    features = ",".join(f'"f{j}":{(message * 7 + j) % 100 / 100}' for j in range(FEATURES)).encode()
    now = time.time()
    records = [
        b'{"request_id":"s%d-%d","timestamp":%.6f,"features":{%s},"prediction":%d,"latency_ms":%.2f}'
        % (message, n, now, features, n % 2, (n % 40) / 2)
        for n in range(RECORDS_PER_MESSAGE)
    ]
    return b'{"records":[' + b",".join(records) + b"]}"


def publish(url: str, subject: str, messages: int, per_second: float) -> None:
    """The publisher process: ``messages`` messages at ``per_second``, paced every 10 ms."""

    async def send() -> None:
        import nats

        nc = await nats.connect(url)
        start, sent = time.perf_counter(), 0
        while sent < messages:
            due = min(messages, int((time.perf_counter() - start) * per_second) + 1)
            for n in range(sent, due):
                await nc.publish(subject, _body(n))
            sent = due
            await nc.flush()
            await asyncio.sleep(0.01)
        await nc.flush()
        await nc.close()

    asyncio.run(send())


def _stream(url: str, name: str, action: str) -> int:
    """Create or delete the benchmark's stream; its message count."""

    async def call() -> int:
        import nats
        from nats.js.errors import BadRequestError, NotFoundError

        nc = await nats.connect(url)
        js = nc.jetstream()
        try:
            if action == "create":
                for stale in await js.streams_info():  # left by a run that was killed before its cleanup
                    if stale.config.name.startswith(STREAM_PREFIX) and stale.config.subjects == [SUBJECT]:
                        await js.delete_stream(stale.config.name)
                try:
                    await js.add_stream(name=name, subjects=[SUBJECT])
                except BadRequestError as exc:
                    raise RuntimeError(
                        f"cannot create the benchmark's stream on {url} ({exc.description}): another stream "
                        f"holds {SUBJECT}; delete it or point MLWATCH_TEST_NATS_URL at another server"
                    ) from exc
                return 0
            if action == "count":
                return int((await js.stream_info(name)).state.messages)
            for made in (name, f"{name}_DEAD"):  # the consumers create the stream of dead letters
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(made)
            return 0
        finally:
            await nc.close()

    return asyncio.run(call())


def _consumer(store_url: str, stream: str, log: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "MLWATCH_STORE_URL": store_url, "MLWATCH_CONFIG": ""}
    command = [sys.executable, "-m", "monitor", "consume", "--stream", nats_url(), "--stream-name", stream]
    command += ["--durable", "bench", "--batch", str(FETCH_BATCH), "--heartbeat", "1", "--log-level", "warning"]
    with log.open("w") as err:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)


def _counts(store_url: str) -> tuple[int, int]:
    """Rows and distinct request ids in the store's predictions."""
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(text("SELECT count(*), count(DISTINCT request_id) FROM predictions")).one()
            return int(rows), int(distinct)
    finally:
        engine.dispose()


def _wait_stored(store_url: str, total: int, deadline: float) -> tuple[int, float]:
    """Rows stored and when (perf_counter): once all ``total`` are, or at ``deadline``."""
    while (found := _counts(store_url)[0]) < total and time.perf_counter() < deadline:
        time.sleep(0.2)
    return found, time.perf_counter()


@dataclass(frozen=True)
class Run:
    """What one stream run measured."""

    rows_per_second: float  # rows stored / seconds from the first publish to the last commit (or the deadline)
    lag_p99: float  # seconds; rows never stored count as beyond the last bound
    per_consumer: list[int]  # rows each consumer stored
    in_stream: int  # messages the stream holds
    stored: int
    distinct: int


def stream_run(store_url: str, plan: Plan, work: Path) -> Run:
    """Offer ``plan`` to 2 consumers and measure; gives up waiting at 2x the offer's time plus 30 s."""
    store = Store.open(store_url, migrate=True)
    store.upsert_service("bench", task="classification", features=tuple(Feature(f"f{j}") for j in range(FEATURES)))
    name = f"{STREAM_PREFIX}{uuid.uuid4().hex[:8]}"
    _stream(nats_url(), name, "create")
    consumers = [_consumer(store_url, name, work / f"consume-{i}.log") for i in range(CONSUMERS)]
    total = plan.messages * RECORDS_PER_MESSAGE
    try:
        time.sleep(3)  # both bound to the durable consumer before the first message
        publisher = multiprocessing.get_context("spawn").Process(
            target=publish, args=(nats_url(), SUBJECT, plan.messages, plan.rate / RECORDS_PER_MESSAGE)
        )
        start = time.perf_counter()
        publisher.start()
        stored, done = _wait_stored(store_url, total, start + plan.seconds * 2 + 30)
        publisher.join(60)
        in_stream = _stream(nats_url(), name, "count")
    finally:
        for process in consumers:
            process.send_signal(signal.SIGTERM)
        for process in consumers:
            process.wait(60)
        _stream(nats_url(), name, "delete")
    statuses = [s for s in store.stream_consumers(since=0) if s.stream == name]
    store.close()
    buckets = [sum(counts) for counts in zip(*(s.lag_buckets for s in statuses), strict=True)]
    buckets[-1] += plan.messages - sum(buckets)  # never stored in time: later than any bound
    rows, distinct = _counts(store_url)
    per_consumer = [s.stored for s in statuses]
    return Run(stored / (done - start), quantile(buckets, 0.99), per_consumer, in_stream, rows, distinct)


def run(plan: Plan) -> list[Result]:
    """The stream figures and their API baseline, each into a PostgreSQL schema of its own."""
    problem = _nats_problem(nats_url())
    if problem:
        print(f"{problem}; skipping the stream benchmark")
        return []
    with tempfile.TemporaryDirectory() as tmp, _postgres_schema() as api_url, _postgres_schema() as url:
        if url is None or api_url is None:
            return []
        work = Path(tmp)
        api = _api_round(work, api_url, 1, "api-", plan.api_rows)  # as bench_ingest's PostgreSQL round
        measured = stream_run(url, plan, work)
        if measured.in_stream != plan.messages or measured.distinct != measured.stored:
            raise RuntimeError(f"published {plan.messages} messages; {measured}")
        offered = f"{plan.rate / 1000:.0f}k rows/s offered for {plan.seconds:.0f} s"
        share = max(measured.per_consumer) / max(1, sum(measured.per_consumer))
        return [
            Result(
                f"stream: JetStream -> PostgreSQL, 2 consumers, {offered} (vs HTTP API)",
                measured.rows_per_second,
                "r/s",
                ">= 50000",
                api,
            ),
            Result("stream: publish-to-commit lag p99 (bucket bound)", measured.lag_p99, "s", "<= 2"),
            Result(
                "stream: share of the rows stored in time",
                measured.stored / (plan.messages * RECORDS_PER_MESSAGE),
                "",
                ">= 1",
            ),
            Result("stream: the busier consumer's share of the rows", share, "", ""),
        ]


def main() -> list[Result]:
    return run(Plan())


if __name__ == "__main__":
    from benchmarks.harness import report

    raise SystemExit(report(main()))
