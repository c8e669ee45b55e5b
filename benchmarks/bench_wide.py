"""Drift check of a wide window (100,000 rows x 500 features) versus Evidently, and how its
cost grows from 50 to 500 columns (issue 18's wide-data targets).

Both sides see the same data: mlwatch's check reads a uniform sample of the window
(``sample_size``, default 20,000 rows) from a SQLite store and tests each column against a
20,000-row reference; the baseline is Evidently's ``DataDriftPreset`` on the full window
and the same reference. A fifth of the columns drift (a mean shift of 0.3 sd). Figures: the
check's steady-state time (reference loaded, as in a worker), its peak memory (tracemalloc),
the speed-up, how often the per-feature verdicts agree, and the ratio of the 500-column
check to ten times the 50-column one (1.0 = linear growth).

Run: ``python -m benchmarks wide`` (several minutes: the 500-column ingest and the preset
dominate). ``MLWATCH_BENCH_WIDE_ROWS`` changes the window size.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_drift import ingest_window
from benchmarks.harness import Result, timed, traced_peak_mb
from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.records import Feature, Service
from monitor.store import Store

ROWS = int(os.environ.get("MLWATCH_BENCH_WIDE_ROWS", "100000"))
REFERENCE_ROWS = 20_000
WIDTHS = (50, 500)
DRIFTED_SHARE = 0.2
CHUNK = 2_000
START = 1_700_000_000.0
HOUR = 3600.0


def frame(rows: int, columns: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    """``columns`` normal features; with ``shifted`` the first fifth move by 0.3 sd."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (rows, columns))
    if shifted:
        values[:, : int(columns * DRIFTED_SHARE)] += 0.3
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(columns)])


def _preset_verdicts(reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(window.columns))
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(window, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    prefix = "Value Drift for column "
    tests = snapshot.dict()["tests"]
    return {t["name"][len(prefix) :]: t["status"].value == "FAIL" for t in tests if t["name"].startswith(prefix)}


def _width(store: Store, columns: int) -> tuple[Service, pd.DataFrame, pd.DataFrame, float]:
    """A service of ``columns`` features with its reference and one ingested window."""
    service = store.upsert_service(
        f"wide{columns}", task="classification", features=tuple(Feature(f"f{i}") for i in range(columns))
    )
    reference = frame(REFERENCE_ROWS, columns, seed=1, shifted=False)
    keep_reference(store, service, reference, source="bench")
    window = frame(ROWS, columns, seed=2, shifted=True)
    started = time.perf_counter()
    ingest_window(store, service, window, START)
    ingest_s = time.perf_counter() - started
    print(f"  {columns} columns: ingested {ROWS:,} rows in {ingest_s:.1f}s", flush=True)
    return service, reference, window, ingest_s


def main() -> list[Result]:
    """Measure the check at both widths and the preset at the widest; see the module docstring."""
    import evidently  # noqa: F401  (import cost is not part of either measurement)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            return _run(store)
        finally:
            store.close()


def _run(store: Store) -> list[Result]:
    steady: dict[int, float] = {}
    for columns in WIDTHS:
        service, reference, window, _ = _width(store, columns)
        runner = CheckRunner(store)
        check = partial(runner.run, service, START, START + HOUR)
        first, cold_s = timed(check)
        steady[columns] = statistics.median(timed(check)[1] for _ in range(3))
        print(f"  {columns} columns: first check {cold_s:.2f}s, steady {steady[columns]:.2f}s", flush=True)
    _, peak_mb = traced_peak_mb(lambda: CheckRunner(store).run(service, START, START + HOUR))
    preset, preset_s = timed(lambda: _preset_verdicts(reference, window))
    print(f"  DataDriftPreset on the full {ROWS:,} x {WIDTHS[-1]} window: {preset_s:.1f}s", flush=True)
    ours = {f["name"]: f["drifted"] for f in first.results["features"]}
    agree = sum(ours.get(name) == verdict for name, verdict in preset.items()) / max(1, len(preset))
    wide = WIDTHS[-1]
    growth = steady[wide] / (steady[WIDTHS[0]] * wide / WIDTHS[0])
    label = f"{ROWS // 1000}k x {wide}"
    return [
        Result(f"drift check {label} (steady state)", steady[wide], "s", "", baseline=preset_s),
        Result(f"speed-up vs DataDriftPreset on the full {label} window", preset_s / steady[wide], "x", ">= 50"),
        Result(f"drift check peak memory (tracemalloc, {label}, cold)", peak_mb, "MB", "<= 1000", peak_mb=peak_mb),
        Result("per-feature verdicts agreeing with DataDriftPreset", 100 * agree, "%", ">= 99"),
        Result(f"check cost {wide} columns / (10 x {WIDTHS[0]} columns)", growth, "x", "<= 1"),
    ]
