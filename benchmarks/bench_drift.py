"""Drift check of a 1M-row window x 20 features against a 100k-row reference, versus Evidently.

Both run in this process on the same data: mlwatch's check reads a uniform sample of
``SAMPLE_SIZE`` rows of the window from a SQLite store (through ``sample_key``) and tests
each column once with Evidently's stattests; the baseline is Evidently's own
``DataDriftPreset`` on the full 1M-row window. Also: the check's cost at 10k, 100k and 1M
rows (it should stay flat once the window holds more rows than the sample; a smaller
window is read whole), its peak memory (tracemalloc), and how often the per-feature
verdicts agree.

Run: ``python -m benchmarks drift`` (about 3-4 minutes, mostly ingest and the preset).
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Result, max_rss_mb, timed, traced_peak_mb
from monitor.drift.check import CheckRunner
from monitor.records import Feature, PredictionRecord, Service
from monitor.store import Store

REFERENCE_ROWS = 100_000
SIZES = (10_000, 100_000, 1_000_000)
SAMPLE_SIZE = 20_000
NUMERICAL = 14
CATEGORICAL = 6
HOUR = 3600.0
START = 1_700_000_000.0
CHUNK = 20_000
# Documented shifts of the window: n0-n3 mean +0.5 sd, n4 mean +0.25 sd, n5 sd x1.6,
# c0 and c1 category mix changes; the other 12 features are unchanged.
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
BASE_MIX = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
SHIFTED_MIX = np.array([0.15, 0.25, 0.15, 0.2, 0.25])


def _frame(rows: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(NUMERICAL):
        mean = (0.5 if i < 4 else 0.25 if i == 4 else 0.0) if shifted else 0.0
        scale = 1.6 if shifted and i == 5 else 1.0
        data[f"n{i}"] = rng.normal(10 + mean * 3, 3 * scale, rows)
    for i in range(CATEGORICAL):
        mix = SHIFTED_MIX if shifted and i < 2 else BASE_MIX
        data[f"c{i}"] = rng.choice(CATEGORIES, rows, p=mix)
    return pd.DataFrame(data)


def _features() -> tuple[Feature, ...]:
    return tuple(Feature(f"n{i}") for i in range(NUMERICAL)) + tuple(
        Feature(f"c{i}", "categorical") for i in range(CATEGORICAL)
    )


def _ingest(store: Store, service: Service, frame: pd.DataFrame, start: float) -> None:
    names = list(frame.columns)
    step = HOUR / len(frame)
    for first in range(0, len(frame), CHUNK):
        chunk = frame.iloc[first : first + CHUNK]
        records = [
            PredictionRecord(
                request_id=f"{start:.0f}-{first + i}",
                ts=start + (first + i) * step,
                features=dict(zip(names, values, strict=True)),
                prediction=int(values[0] > 10),
                model_version="1",
            )
            for i, values in enumerate(chunk.itertuples(index=False, name=None))
        ]
        store.add_predictions(service, records)


def _preset_verdicts(reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[f"n{i}" for i in range(NUMERICAL)],
        categorical_columns=[f"c{i}" for i in range(CATEGORICAL)],
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(window, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    prefix = "Value Drift for column "
    tests = snapshot.dict()["tests"]
    return {t["name"][len(prefix) :]: t["status"].value == "FAIL" for t in tests if t["name"].startswith(prefix)}


def main() -> list[Result]:
    """Measure the check and the preset on the same data; see the module docstring."""
    import evidently  # noqa: F401  (import cost is not part of either measurement)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            return _run(store)
        finally:
            store.close()


def _run(store: Store) -> list[Result]:
    service = store.upsert_service(
        "bench", task="classification", features=_features(), config={"sample_size": SAMPLE_SIZE}
    )
    reference = _frame(REFERENCE_ROWS, seed=1, shifted=False)
    store.set_reference(service, reference, source="bench")
    windows = {}
    for k, size in enumerate(SIZES):
        started = time.perf_counter()
        frame = _frame(size, seed=10 + k, shifted=True)
        _ingest(store, service, frame, START + k * HOUR)
        windows[size] = (START + k * HOUR, START + (k + 1) * HOUR, frame)
        print(f"  ingested a {size:,}-row window in {time.perf_counter() - started:.1f}s", flush=True)
    big_start, big_end, big_frame = windows[SIZES[-1]]

    cold, cold_s = timed(lambda: CheckRunner(store).run(service, big_start, big_end, trigger="manual"))
    _, peak_mb = traced_peak_mb(lambda: CheckRunner(store).run(service, big_start, big_end, trigger="manual"))
    warm_runner = CheckRunner(store)
    warm_runner.run(service, *windows[SIZES[0]][:2])  # loads the reference once, as a worker does
    flat = {size: _median_seconds(partial(warm_runner.run, service, *windows[size][:2])) for size in SIZES}
    cpu_started = time.process_time()
    warm_runner.run(service, big_start, big_end)
    cpu_s = time.process_time() - cpu_started
    print(
        f"  check of the 1M window: first (reference loaded and prepared) {cold_s:.2f}s, "
        f"steady state {flat[SIZES[-1]]:.2f}s wall / {cpu_s:.2f}s CPU; tracemalloc peak {peak_mb:.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    gc.collect()
    rss_before = max_rss_mb()
    preset, preset_s = timed(lambda: _preset_verdicts(reference, big_frame))
    print(
        f"  DataDriftPreset on the full 1M-row window: {preset_s:.1f}s, process peak RSS {max_rss_mb():.0f} MB "
        f"(before it: {rss_before:.0f} MB)"
    )
    ours = {f["name"]: f["drifted"] for f in cold.results["features"]}
    agree = sum(ours.get(name) == verdict for name, verdict in preset.items()) / len(preset)
    print(f"  drifted (mlwatch): {sorted(k for k, v in ours.items() if v)}")
    print(f"  drifted (preset):  {sorted(k for k, v in preset.items() if v)}")
    label = f"sample {SAMPLE_SIZE // 1000}k"
    steady = flat[SIZES[-1]]
    return [
        Result(f"drift check 1M x 20 vs 100k ref ({label}, steady state)", steady, "s", "<= 3", baseline=preset_s),
        Result("speed-up vs DataDriftPreset on the full window", preset_s / steady, "x", ">= 30"),
        Result(f"drift check 1M x 20, first after upload ({label}, cold)", cold_s, "s", "<= 3", baseline=preset_s),
        Result("speed-up vs DataDriftPreset, cold check", preset_s / cold_s, "x", ">= 30"),
        Result("drift check CPU time (steady state, 1M window)", cpu_s, "s", "<= 3"),
        Result("drift check peak memory (tracemalloc, cold)", peak_mb, "MB", "<= 500", peak_mb=peak_mb),
        Result("per-feature verdicts agreeing with DataDriftPreset", 100 * agree, "%", ">= 99"),
        *(Result(f"check cost, {size:,}-row window (median of 3)", s, "s", "<= 3") for size, s in flat.items()),
        # Flat once the window holds more rows than the sample (a 10k window is read whole: 10k rows, not 20k).
        Result("check cost 1M rows / 100k rows (both sampled to 20k)", flat[SIZES[-1]] / flat[SIZES[1]], "x", "<= 1.5"),
    ]


def _median_seconds(fn: Callable[[], object], runs: int = 3) -> float:
    return float(statistics.median(timed(fn)[1] for _ in range(runs)))
