"""Ingest throughput for 20-feature predictions.

(a) direct ``Store.add_predictions`` batches into SQLite and PostgreSQL, against the
driver's bare ``executemany`` of the same rows into a table with the same pages and indexes,
with SQLite's default checkpoints in the writer's commits (the store moves those to a
background thread, engine.Checkpointer); (b) through the HTTP API with batches of 500 and
4 concurrent clients, against (a) on the same backend, with one API worker and with two
(one per core of the target machines; SQLite writers of both queue at one file lock).
SQLite figures are the median of three rounds, each into a fresh store; one more figure shows
the rate into a store that already holds 400k rows of the same hour.
Targets: >= 100,000 rows/s direct SQLite, >= 30,000 rows/s API SQLite, >= 30,000 rows/s
direct PostgreSQL.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

from benchmarks.harness import Result, max_rss_mb, traced_peak_mb
from monitor.records import Feature, PredictionRecord
from monitor.store import Store
from monitor.store.schema import sample_level
from tests.conftest import postgres_base_url, start_server

FEATURES = 20
DIRECT_ROWS = 200_000
DIRECT_BATCH = 10_000
API_ROWS = 100_000
API_BATCH = 500
CLIENTS = 4
ROUNDS = 3


def _records(n: int, prefix: str) -> list[PredictionRecord]:
    rng = random.Random(1)
    now = time.time()
    return [
        PredictionRecord(
            request_id=f"{prefix}{i}",
            ts=now - rng.random() * 3600,
            features={f"f{j}": rng.random() for j in range(FEATURES)},
            prediction=rng.randint(0, 1),
            probabilities=[0.3, 0.7],
            latency_ms=rng.random() * 20,
            model_version="1",
        )
        for i in range(n)
    ]


def _open(url: str) -> tuple[Store, object]:
    store = Store.open(url, migrate=True)
    service = store.upsert_service(
        "bench", task="classification", features=tuple(Feature(f"f{j}") for j in range(FEATURES))
    )
    return store, service


def _direct(urls: list[str]) -> tuple[float, float]:
    """Median rows/s of one round per store in ``urls`` (fresh ones), and the peak memory."""
    rates, peak = [], 0.0
    for round_, url in enumerate(urls):
        store, service = _open(url)
        rates.append(DIRECT_ROWS / _insert_all(store, service, _records(DIRECT_ROWS, f"d{round_}-")))
        if round_ == 0:  # timed above untraced: tracemalloc slows allocation-heavy code threefold
            traced = _records(2 * DIRECT_BATCH, "traced")
            _, peak = traced_peak_mb(functools.partial(_insert_all, store, service, traced))
        store.close()
    return statistics.median(rates), peak


def _insert_all(store: Store, service: object, rows: list[PredictionRecord]) -> float:
    start = time.perf_counter()
    for i in range(0, len(rows), DIRECT_BATCH):
        store.add_predictions(service, rows[i : i + DIRECT_BATCH])  # type: ignore[arg-type]
    return time.perf_counter() - start


def _direct_after_growth(url: str) -> float:
    """Rows/s of the third 200k rows into one store: every row falls in the same hour, so the
    indexes' random inserts spread over ever more pages (what a store sees late in a busy hour)."""
    store, service = _open(url)
    for round_ in range(2):
        _insert_all(store, service, _records(DIRECT_ROWS, f"g{round_}-"))
    rate = DIRECT_ROWS / _insert_all(store, service, _records(DIRECT_ROWS, "g2-"))
    store.close()
    return rate


def _raw_sqlite(paths: list[Path]) -> float:
    """Bare sqlite3 executemany of the same rows into a table with the same pages and indexes:
    the median of one round per (fresh) database file."""
    rates = []
    for round_, path in enumerate(paths):
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE p (id INTEGER PRIMARY KEY, service_id INT, request_id TEXT, ts REAL, minute INT, "
            "sample_key REAL, sample_level INT, features TEXT, prediction TEXT, probabilities TEXT, latency_ms REAL, "
            "model_version TEXT, status TEXT)"
        )
        conn.execute("CREATE UNIQUE INDEX u ON p (service_id, request_id)")
        conn.execute("CREATE INDEX s ON p (service_id, minute, sample_level)")
        keys = [random.random() for _ in range(DIRECT_ROWS)]
        rows = [
            (
                *(1, r.request_id, r.ts, int(r.ts // 60), key, sample_level(key), orjson.dumps(r.features).decode()),
                *("1", "[0.3,0.7]", r.latency_ms, "1", "ok"),
            )
            for r, key in zip(_records(DIRECT_ROWS, f"raw{round_}-"), keys, strict=True)
        ]
        start = time.perf_counter()
        for i in range(0, len(rows), DIRECT_BATCH):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO p VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?)", rows[i : i + DIRECT_BATCH])
            conn.execute("COMMIT")
        rates.append(DIRECT_ROWS / (time.perf_counter() - start))
        conn.close()
    return statistics.median(rates)


def _api(workdir: Path, urls: list[str], workers: int = 1) -> tuple[float, float]:
    """Median rows/s of one round per store in ``urls``, each behind a server of its own."""
    rates = [_api_round(workdir, url, workers, f"a{round_}-") for round_, url in enumerate(urls)]
    return statistics.median(rates), max_rss_mb()


def _api_round(workdir: Path, url: str, workers: int, prefix: str, rows: int = API_ROWS) -> float:
    """Rows/s of ``rows`` rows posted in batches of ``API_BATCH`` by ``CLIENTS`` clients to a server
    of ``workers`` workers on the store at ``url`` (bench_stream's baseline too)."""
    store, _ = _open(url)
    store.close()
    records = _records(rows, prefix)
    bodies = [
        orjson.dumps({"records": [_as_json(r) for r in records[i : i + API_BATCH]]}) for i in range(0, rows, API_BATCH)
    ]
    server = start_server(workdir, url, args=("--workers", str(workers)))
    headers = {"Authorization": f"Bearer {server.token}", "content-type": "application/json"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:

            def post(body: bytes) -> int:
                return client.post("/v1/services/bench/predictions", content=body).status_code

            start = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(post, bodies))
            seconds = time.perf_counter() - start
        assert set(statuses) == {200}, set(statuses)
    finally:
        server.stop()
    return rows / seconds


def _as_json(r: PredictionRecord) -> dict[str, object]:
    return {
        "request_id": r.request_id,
        "timestamp": r.ts,
        "features": r.features,
        "prediction": r.prediction,
        "probabilities": r.probabilities,
        "latency_ms": r.latency_ms,
        "model_version": r.model_version,
    }


@contextmanager
def _postgres_schema() -> Iterator[str | None]:
    base = postgres_base_url()
    try:
        admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # no server: report it and skip the PostgreSQL rows
        print(f"PostgreSQL unavailable at {base}: {type(exc).__name__}; skipping its rows")
        yield None
        return
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main() -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def sqlite_urls(name: str) -> list[str]:
            return [f"sqlite:///{work / f'{name}{r}.db'}" for r in range(ROUNDS)]

        raw = _raw_sqlite([work / f"raw{r}.db" for r in range(ROUNDS)])
        direct, peak = _direct(sqlite_urls("direct"))
        results.append(
            Result("ingest: direct store -> SQLite (vs bare sqlite3)", direct, "r/s", ">= 100000", raw, peak)
        )
        grown = _direct_after_growth(f"sqlite:///{work / 'grown.db'}")
        name = "ingest: direct -> SQLite holding 400k rows of the hour (vs fresh)"
        results.append(Result(name, grown, "r/s", "", direct))
        api, rss = _api(work, sqlite_urls("api"))
        results.append(
            Result("ingest: HTTP API, batches of 500 -> SQLite (vs direct)", api, "r/s", ">= 30000", direct, rss)
        )
        api2, rss2 = _api(work, sqlite_urls("api2-"), workers=2)
        results.append(
            Result("ingest: HTTP API, 2 workers, batches of 500 -> SQLite (vs 1)", api2, "r/s", ">= 30000", api, rss2)
        )
        with _postgres_schema() as pg:
            if pg:
                pg_direct, pg_peak = _direct([pg])
                results.append(
                    Result(
                        "ingest: direct store -> PostgreSQL (vs direct SQLite)",
                        pg_direct,
                        "r/s",
                        ">= 30000",
                        direct,
                        pg_peak,
                    )
                )
        with _postgres_schema() as pg:
            if pg:
                pg_api, pg_rss = _api(work, [pg])
                results.append(
                    Result(
                        "ingest: HTTP API, batches of 500 -> PostgreSQL (vs API SQLite)",
                        pg_api,
                        "r/s",
                        ">= 10000",
                        api,
                        pg_rss,
                    )
                )
    return results


if __name__ == "__main__":
    from benchmarks.harness import report

    raise SystemExit(report(main()))
