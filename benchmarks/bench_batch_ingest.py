"""``mlwatch ingest --direct`` of a generated 1M-row x 20-feature Parquet file into SQLite.

Each figure runs the real command in a child process (``python -m monitor ingest``, as a
user would, imports included) against a fresh store: the first load's rows/s, against the
store's own rate for the same rows handed to ``Store.add_predictions`` in batches of 5000
in this process (the ceiling the command's reading, checking and converting eat into);
then the same command again, with nothing new, in seconds. Peak memory is the child's
resident set, which grows with the file's row groups (pandas writes up to 1M rows in one,
and pyarrow decodes a row group whole). For information: the first load's CPU seconds
(user + system; on a shared host the wall time also waits for other processes), and a
200k-row file through the HTTP API (one ``mlwatch server`` worker), against the direct command.
Targets (issue 15): >= 50,000 rows/s first load, <= 10 s for the re-run.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Result
from monitor.records import Feature, PredictionRecord
from monitor.store import Store

ROWS = 1_000_000
API_ROWS = 200_000
BASELINE_ROWS = 200_000
FEATURES = 20
CHUNK = 5000
SEED = 15


def generate(path: Path, rows: int) -> Path:
    """A Parquet file like a batch job's: request ids, times of the last hour, 20 features."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    frame = pd.DataFrame({f"f{j}": rng.random(rows) for j in range(FEATURES)})
    frame.insert(0, "request_id", [f"batch-{i}" for i in range(rows)])
    frame["timestamp"] = time.time() - rng.random(rows) * 3600
    frame["prediction"] = rng.integers(0, 2, rows)
    frame["latency_ms"] = rng.random(rows) * 20
    frame.to_parquet(path, index=False)
    return path


def new_store(url: str) -> None:
    """A store with the service ``bench`` registered, as ``mlwatch ingest --direct`` expects."""
    store = Store.open(url)
    store.upsert_service("bench", task="classification", features=tuple(Feature(f"f{j}") for j in range(FEATURES)))
    store.close()


def ingest(path: Path, url: str, *extra: str, env: dict[str, str] | None = None) -> float:
    """Seconds of ``python -m monitor ingest FILE --service bench --json [extra]`` in a child process."""
    env = {**os.environ, "MLWATCH_STORE_URL": url, "MLWATCH_CONFIG": "", **(env or {})}
    args = [sys.executable, "-m", "monitor", "ingest", str(path), "--service", "bench", "--json", *extra]
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=path.parent, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"mlwatch ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def store_rate(url: str) -> float:
    """Rows/s of ``Store.add_predictions`` for rows like the file's, batches of ``CHUNK``."""
    import random

    rng = random.Random(SEED)
    now = time.time()
    records = [
        PredictionRecord(
            request_id=f"base-{i}",
            ts=now - rng.random() * 3600,
            features={f"f{j}": rng.random() for j in range(FEATURES)},
            prediction=rng.randint(0, 1),
            latency_ms=rng.random() * 20,
        )
        for i in range(BASELINE_ROWS)
    ]
    new_store(url)
    store = Store.open(url)
    service = store.get_service("bench")
    start = time.perf_counter()
    for i in range(0, len(records), CHUNK):
        store.add_predictions(service, records[i : i + CHUNK])
    seconds = time.perf_counter() - start
    store.close()
    return BASELINE_ROWS / seconds


def child_peak_mb() -> float:
    """The largest resident set of any child process waited for so far, MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def child_cpu_s() -> float:
    """User plus system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def api_rate(work: Path, direct: float) -> Result:
    """Rows/s of the same command through the API (one server worker) for a smaller file."""
    from tests.conftest import start_server

    url = f"sqlite:///{work / 'api.db'}"
    new_store(url)
    path = generate(work / "api.parquet", API_ROWS)
    server = start_server(work, url)
    try:
        seconds = ingest(path, url, env={"MLWATCH_URL": server.url, "MLWATCH_TOKEN": server.token})
    finally:
        server.stop()
    return Result("batch ingest: 200k rows through the HTTP API (vs --direct)", API_ROWS / seconds, "r/s", "", direct)


def main() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = generate(work / "predictions.parquet", ROWS)
        baseline = store_rate(f"sqlite:///{work / 'baseline.db'}")
        url = f"sqlite:///{work / 'mlwatch.db'}"
        new_store(url)
        cpu = child_cpu_s()
        seconds = ingest(path, url, "--direct")
        cpu, peak = child_cpu_s() - cpu, child_peak_mb()
        rerun = ingest(path, url, "--direct")
        name = "batch ingest: 1M x 20 Parquet, first load (vs Store.add_predictions)"
        results = [
            Result(name, ROWS / seconds, "r/s", ">= 50000", baseline, peak),
            # on a shared host the wall time waits for other processes; the CPU time does not
            Result("batch ingest: first load, CPU seconds of the command (vs its wall time)", cpu, "s", "", seconds),
            Result("batch ingest: the same file again, nothing new", rerun, "s", "<= 10"),
        ]
        results.append(api_rate(work, ROWS / seconds))
    return results


if __name__ == "__main__":
    from benchmarks.harness import report

    raise SystemExit(report(main()))
