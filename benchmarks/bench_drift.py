"""Drift check of a 1M-row window x 20 features against a 100k-row reference, versus Evidently.

Both run in this process on the same data: mlwatch's check reads a uniform sample of
``SAMPLE_SIZE`` rows of the window from a SQLite store (through ``sample_key``) and tests
each column once with Evidently's stattests; the baseline is Evidently's own
``DataDriftPreset`` on the full 1M-row window. Also: the check's cost at 10k, 100k and 1M
rows (it should stay flat once the window holds more rows than the sample; a smaller
window is read whole), its peak memory (tracemalloc), and how often the per-feature
verdicts agree. Then multivariate drift (a flipped correlation, random halves of a real data
set; NannyML's verdict beside ours when ``/tmp/nannyml-venv`` has it) and the time to embed
10,000 texts with the text extra's model.

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
from monitor.drift.reference import keep_reference
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


def ingest_window(store: Store, service: Service, frame: pd.DataFrame, start: float) -> None:
    """Log ``frame``'s rows as predictions of version 1 spread over the hour from ``start``."""
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
            checks = _run(store)
        finally:
            store.close()
    return [*checks, *joint_results(), *embedding_results()]


def _run(store: Store) -> list[Result]:
    service = store.upsert_service(
        "bench", task="classification", features=_features(), config={"sample_size": SAMPLE_SIZE}
    )
    reference = _frame(REFERENCE_ROWS, seed=1, shifted=False)
    keep_reference(store, service, reference, source="bench")
    windows = {}
    for k, size in enumerate(SIZES):
        started = time.perf_counter()
        frame = _frame(size, seed=10 + k, shifted=True)
        ingest_window(store, service, frame, START + k * HOUR)
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


# Multivariate drift and text embeddings (issue #18): verdicts on the cases they exist for,
# their cost per check, and what embedding costs on this machine.
JOINT_ROWS = 5_000
EMBEDDED_TEXTS = 10_000
NANNYML_PYTHON = Path("/tmp/nannyml-venv/bin/python")
"""NannyML, where it was installed into a venv of its own (it pins libraries older than ours)."""


def flipped(rows: int, correlation: float, seed: int) -> pd.DataFrame:
    """Two standard normal inputs of the given correlation (unchanged marginals) and 18 independent ones."""
    rng = np.random.default_rng(seed)
    pair = rng.multivariate_normal([0, 0], [[1, correlation], [correlation, 1]], rows)
    frame = pd.DataFrame(rng.normal(size=(rows, 18)), columns=[f"n{i}" for i in range(2, 20)])
    frame.insert(0, "n1", pair[:, 1])
    frame.insert(0, "n0", pair[:, 0])
    return frame


def joint_verdicts(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """Per-feature drifted count, each multivariate method's verdict, and each step's seconds."""
    from monitor.drift.multivariate import Detector, settings_of
    from monitor.drift.stattests import DriftSpec, column_drift, prepare, prepare_reference

    types = dict.fromkeys(reference.columns, "numerical")
    per_feature, per_feature_s = timed(
        lambda: [
            column_drift(
                DriftSpec(str(c), "numerical"),
                prepare_reference(reference[c], "numerical"),
                prepare(current[c], "numerical"),
            )
            for c in reference.columns
        ]
    )
    out: dict[str, float] = {
        "drifted features": float(sum(bool(f and f.drifted) for f in per_feature)),
        "per-feature s": per_feature_s,
    }
    for method in ("pca", "classifier"):
        detector = Detector(reference, types, settings_of({"multivariate": {"methods": [method]}}))
        found, first_s = timed(partial(detector.detect, current))
        _, again_s = timed(partial(detector.detect, current))
        out[method] = float(found.verdicts[0].drifted)
        out[f"{method} first s"], out[f"{method} s"] = first_s, again_s
    return out


def nannyml_verdict(reference: pd.DataFrame, current: pd.DataFrame) -> str | None:
    """How many of ``current``'s chunks NannyML's ``DataReconstructionDriftCalculator`` alerts on, or None
    without NannyML. Chunks are a tenth of the reference, so its thresholds come from 10 reference chunks
    (a chunk the size of the window would leave a reference of the same size one chunk, and no spread)."""
    if not NANNYML_PYTHON.exists():
        return None
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        reference.to_csv(f"{tmp}/reference.csv", index=False)
        current.to_csv(f"{tmp}/current.csv", index=False)
        script = (
            "import sys, pandas as pd, nannyml as nml\n"
            f"ref, cur = pd.read_csv('{tmp}/reference.csv'), pd.read_csv('{tmp}/current.csv')\n"
            "calc = nml.DataReconstructionDriftCalculator(column_names=list(ref.columns), chunk_size=len(ref) // 10)\n"
            "calc.fit(ref)\n"
            "res = calc.calculate(cur).filter(period='analysis').to_df()\n"
            "alerts = res[('reconstruction_error', 'alert')]\n"
            "print(f'{int(alerts.sum())} of {len(alerts)} chunks alerted')\n"
        )
        done = subprocess.run([str(NANNYML_PYTHON), "-c", script], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"  NannyML did not run: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return done.stdout.strip().splitlines()[-1]


def joint_results(rows: int = JOINT_ROWS, *, nannyml: bool = True) -> list[Result]:
    """Multivariate verdicts on a flipped correlation and on random halves of breast-cancer data."""
    from sklearn.datasets import load_breast_cancer

    flip = joint_verdicts(flipped(rows, 0.9, seed=1), flipped(rows, -0.9, seed=2))
    cancer = load_breast_cancer(as_frame=True).data
    order = np.random.default_rng(0).permutation(len(cancer))
    halves = (cancer.iloc[order[: len(cancer) // 2]], cancer.iloc[order[len(cancer) // 2 :]])
    calm = joint_verdicts(*halves)
    print(f"  flipped correlation, {rows:,} rows a side: {flip}")
    print(f"  breast-cancer halves: {calm}")
    cases = {"flipped correlation": (flipped(rows, 0.9, seed=1), flipped(rows, -0.9, seed=2)), "cancer halves": halves}
    for case, (reference, current) in cases.items() if nannyml else ():
        print(f"  NannyML's reconstruction drift on the {case}: {nannyml_verdict(reference, current)}")
    return [
        Result("multivariate: features drifted on a flipped correlation", float(flip["drifted features"]), "", "<= 0"),
        Result(
            "multivariate: methods finding the flipped correlation",
            float(flip["pca"]) + float(flip["classifier"]),
            "",
            ">= 2",
        ),
        Result(
            "multivariate: methods drifting on breast-cancer halves",
            float(calm["pca"]) + float(calm["classifier"]),
            "",
            "<= 0",
        ),
        Result(
            f"multivariate pca per check, {rows:,} x 20 (reference fitted)",
            float(flip["pca s"]),
            "s",
            "<= 3",
            baseline=float(flip["per-feature s"]),
        ),
        Result(f"multivariate pca, first check (fits 5 PCAs), {rows:,} x 20", float(flip["pca first s"]), "s", "<= 10"),
        Result(
            f"multivariate classifier per check, {rows:,} x 20",
            float(flip["classifier s"]),
            "s",
            "<= 20",
            baseline=float(flip["per-feature s"]),
        ),
    ]


def embedding_results(texts: int = EMBEDDED_TEXTS) -> list[Result]:
    """Seconds to embed ``texts`` review-like texts with all-MiniLM-L6-v2 on this machine's CPUs."""
    from monitor.drift.embeddings import MiniLM

    rng = np.random.default_rng(0)
    words = np.array(
        [
            "the",
            "food",
            "was",
            "great",
            "battery",
            "phone",
            "screen",
            "waiter",
            "slow",
            "fast",
            "cold",
            "tasty",
            "broken",
        ]
    )
    batch = [" ".join(rng.choice(words, int(rng.integers(6, 30)))) for _ in range(texts)]
    model = MiniLM()
    _, load_s = timed(lambda: model.encode(batch[:1]))
    _, embed_s = timed(lambda: model.encode(batch))
    print(f"  embedding model loaded in {load_s:.1f}s; {texts:,} texts in {embed_s:.1f}s on {os.cpu_count()} CPUs")
    return [Result(f"embed {texts:,} texts (all-MiniLM-L6-v2, CPU)", embed_s, "s", "", peak_mb=max_rss_mb())]
