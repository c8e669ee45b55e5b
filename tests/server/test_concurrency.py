"""Several processes writing to one SQLite store while another reads: nothing lost, no errors."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import httpx

from monitor.records import PredictionRecord
from monitor.store import Store
from tests.conftest import start_server

WRITERS = 4
BATCHES = 15
BATCH = 200


def _post_batches(url: str, token: str, writer: int, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for b in range(BATCHES):
            records = [
                {"request_id": f"w{writer}-{b}-{i}", "features": {"x": float(i)}, "latency_ms": 1.0}
                for i in range(BATCH)
            ]
            response = client.post("/v1/services/svc/predictions", json={"records": records})
            if response.status_code != 200:
                errors.put(f"writer {writer}: {response.status_code} {response.text}")


def _direct_writes(store_url: str, writer: int, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    store = Store.open(store_url)
    service = store.get_service("svc")
    try:
        for b in range(BATCHES):
            now = time.time()
            records = [PredictionRecord(f"d{writer}-{b}-{i}", now, {"x": 1.0}) for i in range(BATCH)]
            store.add_predictions(service, records)
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"direct writer {writer}: {exc!r}")
    finally:
        store.close()


def _read_until(store_url: str, stop: mp.Event, errors: mp.Queue, reads: mp.Value) -> None:  # type: ignore[type-arg]
    store = Store.open(store_url)
    service = store.get_service("svc")
    try:
        while not stop.is_set():
            store.count_window(service, 0, time.time() + 60)
            store.traffic_stats(service, time.time() - 3600, time.time() + 60, 60)
            with reads.get_lock():
                reads.value += 1
    except Exception as exc:
        errors.put(f"reader: {exc!r}")
    finally:
        store.close()


def test_concurrent_writer_processes_lose_nothing_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store.open(url)
    service = store.upsert_service("svc", task="regression")
    servers = [start_server(tmp_path, url) for _ in range(2)]  # two API processes on one file
    ctx = mp.get_context("spawn")
    errors, stop, reads = ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
    reader = ctx.Process(target=_read_until, args=(url, stop, errors, reads))
    reader.start()
    writers = [
        ctx.Process(target=_post_batches, args=(servers[w % 2].url, servers[w % 2].token, w, errors))
        for w in range(WRITERS)
    ] + [ctx.Process(target=_direct_writes, args=(url, w, errors)) for w in range(2)]
    try:
        for p in writers:
            p.start()
        for p in writers:
            p.join(180)
        stop.set()
        reader.join(30)
    finally:
        for server in servers:
            server.stop()
    problems = [errors.get() for _ in range(errors.qsize())]
    assert problems == []
    expected = (WRITERS + 2) * BATCHES * BATCH
    assert store.count_window(service, 0, time.time() + 60) == expected
    assert sum(b.count for b in store.traffic_stats(service, time.time() - 3600, time.time() + 60, 3600)) == expected
    assert reads.value > 0
    store.close()
