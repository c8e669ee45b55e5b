"""Retrain-to-promotion on a 100k-row tabular data set, and the hot-swap pause of ``mlwatch serve``.

1. A service with 8 numerical and 2 categorical features has 50k reference rows and 50k
   labeled, drifted production rows; the time from the retrain request to the moved
   ``champion`` alias (data, training with the default estimator, MLflow run, registration,
   scoring challenger and champion, gate, promotion) is measured in this process, after
   imports. Baseline: fitting the same pipeline on the same rows alone.
2. A real ``mlwatch serve`` process answers a client calling it in a loop; a rollback moves
   the alias and the server swaps versions. The worst latency in the second around the
   swap is compared with the median; baseline: the same ratio over a second without a swap
   (the machine's own noise: a closed-loop client's slowest call of a second is 1.5-2x its median).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from benchmarks.harness import Result, max_rss_mb
from monitor.config import RetrainConfig, Settings
from monitor.drift.reference import keep_reference
from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

WINDOW = 1.0  # seconds of requests compared: around the swap, and steady before it
SWAPS = 5
ROWS = 50_000  # reference rows; as many production rows again
NUMERICAL = [f"n{i}" for i in range(8)]
CATEGORICAL = ["region", "plan"]


def _frame(n: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {name: rng.normal(1.0 if drifted else 0.0, 1.0, n) for name in NUMERICAL}
    data["region"] = rng.choice(["north", "south", "east", "west"], n)
    data["plan"] = rng.choice(["basic", "plus", "pro"], n)
    score = data["n0"] + data["n1"] - data["n2"] + 0.5 * (data["plan"] == "pro")
    if drifted:
        score = data["n3"] - data["n0"] + (data["region"] == "south")
    data["label"] = (score > (1.0 if drifted else 0.0)).astype(int)
    return pd.DataFrame(data)


def _ingest(store: Store, service: Service, data: pd.DataFrame) -> None:
    now = time.time()
    features = data.drop(columns="label").to_dict("records")
    ids = [uuid.uuid4().hex for _ in range(len(data))]
    ts = np.linspace(now - 3000, now - 1, len(data))
    for start in range(0, len(data), 5000):
        chunk = range(start, min(start + 5000, len(data)))
        store.add_predictions(
            service, [PredictionRecord(ids[i], float(ts[i]), features[i], 0, model_version="1") for i in chunk]
        )
        store.add_labels(service, [LabelRecord(ids[i], int(data["label"].iat[i]), float(ts[i])) for i in chunk])


def _world(tmp: Path) -> tuple[Store, Settings, Service]:
    settings = Settings(
        store_url=f"sqlite:///{tmp / 'mlwatch.db'}",
        mlflow_tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        retrain=(RetrainConfig(service="bench", auto_promote=True),),
    )
    store = Store.open(settings.store_url)
    features = (*(Feature(n) for n in NUMERICAL), *(Feature(c, "categorical") for c in CATEGORICAL))
    service = store.upsert_service("bench", task="classification", target="label", features=features)
    keep_reference(store, service, _frame(ROWS, 1, drifted=False))
    return store, settings, service


def _retrain(store: Store, settings: Settings) -> dict[str, object]:
    from retrain.actions import request_retrain
    from retrain.registry import Registry
    from retrain.runner import JobRunner

    registry = Registry.from_settings(settings, store)
    job, _ = request_retrain(store, settings, "bench", actor="bench")
    claimed = store.claim_job("bench")
    assert claimed is not None and claimed.id == job.id
    return JobRunner(store, settings, registry).run(claimed)


def _fit_only(store: Store, service: Service, settings: Settings) -> float:
    from retrain.data import build_training_data
    from retrain.trainers import TrainRequest
    from retrain.trainers.sklearn import SklearnTrainer

    data = build_training_data(store, service, settings.retrain_policy("bench"), time.time())
    start = time.perf_counter()
    SklearnTrainer().train(TrainRequest(data, "retrain", {}))
    return time.perf_counter() - start


def bench_retrain(tmp: Path) -> tuple[Result, Store, Settings]:
    """Time from request to promotion of a challenger trained on 100k rows."""
    import mlflow  # noqa: F401 - imports are not what is measured
    import sklearn.ensemble  # noqa: F401

    store, settings, service = _world(tmp)
    _retrain(store, settings)  # version 1: the champion to beat
    _ingest(store, service, _frame(ROWS, 2, drifted=True))
    start = time.perf_counter()
    result = _retrain(store, settings)
    seconds = time.perf_counter() - start
    assert result["decision"] == "promote", result
    baseline = _fit_only(store, service, settings)
    name = "retrain to promotion, 100k rows x 10 features (s)"
    return Result(name, seconds, "s", "<= 60", baseline=baseline, peak_mb=max_rss_mb()), store, settings


def _latencies(client: httpx.Client, url: str, seconds: float) -> list[tuple[float, float, str]]:
    body = {"dataframe_records": [_frame(1, 9, drifted=True).drop(columns="label").iloc[0].to_dict()]}
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        answer = client.post(f"{url}/invocations", json=body)
        answer.raise_for_status()
        out.append((start, time.perf_counter() - start, answer.headers["x-model-version"]))
    return out


def bench_hot_swap(tmp: Path, store: Store, settings: Settings) -> Result:
    """Worst request latency around a version swap against the median, over several swaps."""
    port = 5700 + os.getpid() % 1000
    env = {
        **os.environ,
        "MLWATCH_STORE_URL": settings.store_url,
        "MLWATCH_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLWATCH_URL": "http://127.0.0.1:9",
        "MLWATCH_HOME": str(tmp / "home"),
    }
    command = [sys.executable, "-m", "monitor", "serve", "bench", "--port", str(port), "--poll-interval", "0.2"]
    serve = subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=30) as client:
            _wait(client, url)
            _latencies(client, url, 1.0)  # warm up
            swaps = [_one_swap(client, url, store, settings) for _ in range(SWAPS)]
    finally:
        serve.terminate()
        serve.wait(15)
    value = statistics.median(swap for swap, _ in swaps)
    baseline = statistics.median(steady for _, steady in swaps)
    name = f"hot swap: max latency around a swap / median (x, median of {SWAPS})"
    return Result(name, value, "x", "<= 2", baseline=baseline)


def _one_swap(client: httpx.Client, url: str, store: Store, settings: Settings) -> tuple[float, float]:
    """(max/median around a swap, max/median of a steady window just before it)."""
    from retrain.actions import rollback

    steady = _latencies(client, url, WINDOW)
    before = steady[-1][2]
    rollback(store, settings, "bench", actor="bench")
    answers = _latencies(client, url, 4.0)
    swapped = next(start for start, _, version in answers if version != before)
    # The load starts at most one poll interval (0.2 s) before the first answer of the new version.
    around = [latency for start, latency, _ in answers if swapped - WINDOW + 0.25 <= start <= swapped + 0.25]
    median = statistics.median(latency for _, latency, _ in steady + answers)
    return max(around) / median, max(latency for _, latency, _ in steady) / median


def _wait(client: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get(f"{url}/ping").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"mlwatch serve did not answer at {url}")


def main() -> list[Result]:
    """Both benchmarks, in a temporary directory."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="mlwatch-bench-retrain-") as name:
        tmp = Path(name)
        retrain, store, settings = bench_retrain(tmp)
        try:
            swap = bench_hot_swap(tmp, store, settings)
        finally:
            store.close()
    return [retrain, swap]
