"""What segments add to a check: a 1M-row window, 2 segment columns of 10 values each (20 in all).

The same window and reference are checked twice in this run, by one service's settings
with ``segments: [region, channel]`` and without, so the ratio is segments' own cost:

- the scheduled check: a 1M-row window ingested into SQLite (predictions with probabilities,
  a tenth of them labelled), of which the check reads its uniform sample of ``SAMPLE_SIZE``
  rows, against a 100k-row reference with labels and predictions (cohort baselines); steady
  state, the reference loaded, the fastest of 5 runs each, taken in turns;
- the whole window judged: ``evaluate`` on all 1M rows at once (``sample_size`` at its
  maximum), in memory, so the store's read, the same for both, does not water the ratio
  down; the fastest of 2 runs each, taken in turns, and one more each for its tracemalloc peak.

``MLWATCH_BENCH_SEGMENT_ROWS`` sets the window's rows (default 1,000,000; the in-memory
run takes about 4 minutes of CPU on these 2 cores at that size, a minute of it the ingest).

Run: ``python -m benchmarks segments``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Result, timed, traced_peak_mb
from monitor.drift.check import CheckRunner, evaluate
from monitor.drift.loaded import ReferenceCache
from monitor.drift.reference import keep_reference
from monitor.drift.window import WindowSample
from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

ROWS = int(os.environ.get("MLWATCH_BENCH_SEGMENT_ROWS", "1000000"))
REFERENCE_ROWS = 100_000
SAMPLE_SIZE = 20_000
NUMERICAL, CATEGORICAL = 14, 6
REGIONS = np.array([f"region-{i}" for i in range(10)])
CHANNELS = np.array([f"channel-{i}" for i in range(10)])
LABELLED = 0.1
START, HOUR, CHUNK = 1_700_000_000.0, 3600.0, 20_000
SEGMENTS = {"segments": ["region", "channel"]}


def frame(rows: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    """Inputs, segment columns, P(class 1), prediction and label; when ``shifted``, n0-n3 move by half
    a standard deviation and region-3's model is right 20 points less often."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(NUMERICAL):
        data[f"n{i}"] = rng.normal(10 + (1.5 if shifted and i < 4 else 0.0), 3, rows)
    for i in range(CATEGORICAL):
        data[f"c{i}"] = rng.choice(np.array(["alpha", "beta", "gamma", "delta"]), rows)
    data["region"] = rng.choice(REGIONS, rows)
    data["channel"] = rng.choice(CHANNELS, rows)
    p = rng.uniform(0.02, 0.98, rows)
    prediction = (p >= 0.5).astype(int)
    right = rng.random(rows) < np.maximum(p, 1 - p)
    if shifted:
        right &= ~((data["region"] == "region-3") & (rng.random(rows) < 0.25))
    data.update(proba_0=1 - p, proba_1=p, prediction=prediction, target=np.where(right, prediction, 1 - prediction))
    return pd.DataFrame(data)


def features() -> tuple[Feature, ...]:
    """The 20 inputs and the two segment columns, all registered."""
    names = [Feature(f"n{i}") for i in range(NUMERICAL)] + [Feature(f"c{i}", "categorical") for i in range(CATEGORICAL)]
    return (*names, Feature("region", "categorical"), Feature("channel", "categorical"))


def _ingest(store: Store, service: Service, window: pd.DataFrame) -> None:
    names = [f.name for f in features()]
    step = HOUR / len(window)
    for first in range(0, len(window), CHUNK):
        chunk = window.iloc[first : first + CHUNK]
        rows = chunk[[*names, "prediction", "proba_1"]].itertuples(index=False, name=None)
        records = [
            PredictionRecord(
                f"w{first + i}",
                START + (first + i) * step,
                dict(zip(names, values[:-2], strict=True)),
                int(values[-2]),
                {"0": 1 - values[-1], "1": values[-1]},
                model_version="1",
            )
            for i, values in enumerate(rows)
        ]
        store.add_predictions(service, records)
        labelled = chunk.iloc[: int(len(chunk) * LABELLED)]
        store.add_labels(
            service,
            [LabelRecord(f"w{first + i}", int(y), START + HOUR) for i, y in enumerate(labelled["target"])],
        )


def in_memory(window: pd.DataFrame) -> WindowSample:
    """The whole window as a check's sample, every row labelled a tenth of the time."""
    has_label = np.random.default_rng(5).random(len(window)) < LABELLED
    return WindowSample(
        features=window[[f.name for f in features()]],
        predictions=window["prediction"].astype(object),
        labels=window["target"].astype(object).where(has_label, None),
        has_label=has_label,
        proba=window[["proba_0", "proba_1"]].set_axis(["0", "1"], axis=1),
        model_version="1",
    )


def main() -> list[Result]:
    """Both checks, with and without segments; see the module docstring."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            return _run(store)
        finally:
            store.close()


def _run(store: Store) -> list[Result]:
    plain = store.upsert_service(
        "bench", task="classification", target="target", features=features(), config={"sample_size": SAMPLE_SIZE}
    )
    segmented = replace(plain, config={**plain.config, **SEGMENTS})
    keep_reference(store, plain, frame(REFERENCE_ROWS, seed=1, shifted=False), source="bench")
    window = frame(ROWS, seed=2, shifted=True)
    started = time.perf_counter()
    _ingest(store, plain, window)
    print(f"  ingested a {ROWS:,}-row window in {time.perf_counter() - started:.1f}s", flush=True)
    return [*_scheduled(store, plain, segmented), *_whole(store, plain, segmented, window)]


def paired(plain: Callable[[], object], segmented: Callable[[], object], runs: int) -> tuple[float, float]:
    """The fastest of ``runs`` runs of each, taken in turns: the cores are shared, and a burst of other
    work during one side's runs would otherwise land in the ratio."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        times[0].append(timed(plain)[1])
        times[1].append(timed(segmented)[1])
    return min(times[0]), min(times[1])


def _scheduled(store: Store, plain: Service, segmented: Service) -> list[Result]:
    runner = CheckRunner(store)
    end = START + HOUR
    runner.run(plain, START, end)  # the reference loaded and prepared, as a worker has it
    found = runner.run(segmented, START, end).summary.segments
    assert found is not None and found.cohorts, "the segmented check found no cohorts"
    print(f"  worst cohort (sampled check): {found.cohorts[0].label}, drop {found.cohorts[0].drop:.3f}")
    without, with_segments = paired(lambda: runner.run(plain, START, end), lambda: runner.run(segmented, START, end), 5)
    label = f"{ROWS // 1000}k-row window, sample {SAMPLE_SIZE // 1000}k"
    return [
        Result(f"segments: check with 2 x 10 segments ({label})", with_segments, "s", "", baseline=without),
        Result("segments: check cost with / without segments (sampled)", with_segments / without, "x", "<= 2"),
    ]


def _whole(store: Store, plain: Service, segmented: Service, window: pd.DataFrame) -> list[Result]:
    reference = ReferenceCache(store).get(plain, "1")
    sample = in_memory(window)
    evaluate(plain, sample, reference)  # columns prepared, tests chosen, as a worker has them
    evaluate(segmented, sample, reference)
    without, with_segments = paired(lambda: evaluate(plain, sample, reference),
                                    lambda: evaluate(segmented, sample, reference), 2)  # fmt: skip
    # Peaks in runs of their own: tracemalloc slows allocation, and would weigh on the ratio.
    _, peak_without = traced_peak_mb(lambda: evaluate(plain, sample, reference))
    found, peak = traced_peak_mb(lambda: evaluate(segmented, sample, reference))
    worst = found.summary.segments.cohorts[0] if found.summary.segments else None
    print(f"  whole window: {without:.1f}s without segments, {with_segments:.1f}s with; worst cohort "
          f"{worst.label if worst else None}; tracemalloc peak {peak_without:.0f} / {peak:.0f} MB")  # fmt: skip
    label = f"whole {ROWS // 1000}k-row window"
    return [
        Result(
            f"segments: check with 2 x 10 segments ({label})", with_segments, "s", "", baseline=without, peak_mb=peak
        ),
        Result(f"segments: check cost with / without segments ({label})", with_segments / without, "x", "<= 2"),
        Result(f"segments: peak memory with / without ({label})", peak / peak_without, "x", "", peak_mb=peak),
        Result(
            "segments: worst cohort is the region that fell",
            float(bool(worst and worst.label == "region=region-3")),
            "",
            ">= 1",
        ),
    ]
