"""Segments and worst cohorts: per-segment drift and quality, cohorts ranked against their own baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from monitor.check_summary import CheckSummary
from monitor.config import Settings
from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

START = 1_700_000_000.0
HOUR = 3600.0
FEATURES = (Feature("x"), Feature("region", "categorical"), Feature("channel", "categorical"))
REGIONS = [f"r{i}" for i in range(10)]


@dataclass(frozen=True)
class Cohort:
    """Rows of one region: how many, and the share of them the model gets right."""

    region: str
    rows: int
    right: float
    x_mean: float = 0.0


def _rows(cohorts: list[Cohort], seed: int) -> pd.DataFrame:
    """Exactly ``right`` of each cohort's rows predicted right, spread evenly over both channels."""
    rng = np.random.default_rng(seed)
    parts = []
    for c in cohorts:
        index = np.arange(c.rows)
        target = rng.integers(0, 2, c.rows)
        correct = (index % 10) < round(c.right * 10)  # every block of ten rows: the same share right
        parts.append(
            pd.DataFrame(
                {
                    "x": rng.normal(c.x_mean, 1, c.rows),
                    "region": c.region,
                    "channel": np.where((index // 10) % 2 == 0, "app", "web"),
                    "target": target,
                    "prediction": np.where(correct, target, 1 - target),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _service(store: Store, **config: object) -> Service:
    settings = {"segments": ["region", "channel"], **config}
    return store.upsert_service("shop", task="classification", target="target", features=FEATURES, config=settings)


def _window(store: Store, service: Service, frame: pd.DataFrame, start: float = START, prefix: str = "w") -> None:
    """The frame's rows as one window's predictions, each labelled."""
    step = HOUR / len(frame)
    records = [
        PredictionRecord(
            f"{prefix}{i}", start + i * step, {"x": x, "region": r, "channel": c}, int(p), model_version="1"
        )
        for i, (x, r, c, p) in enumerate(frame[["x", "region", "channel", "prediction"]].itertuples(index=False))
    ]
    store.add_predictions(service, records)
    labels = [LabelRecord(f"{prefix}{i}", int(y), start + HOUR) for i, y in enumerate(frame["target"])]
    store.add_labels(service, labels)


def _check(store: Store, service: Service, start: float = START) -> CheckSummary:
    record = CheckRunner(store).run(service, start, start + HOUR)
    assert record.status == "ok", record.error
    return record.summary


def test_a_twenty_point_drop_in_one_region_of_ten_ranks_first_while_the_global_drop_is_two(
    sqlite_store: Store,
) -> None:
    service = _service(sqlite_store)
    keep_reference(sqlite_store, service, _rows([Cohort(r, 1000, 0.9) for r in REGIONS], seed=1))
    window = [Cohort(r, 500, 0.7 if r == "r3" else 0.9) for r in REGIONS]
    _window(sqlite_store, service, _rows(window, seed=2))
    summary = _check(sqlite_store, service)
    assert summary.decay is not None
    assert summary.decay["accuracy"].absolute == pytest.approx(0.02)
    assert summary.segments is not None
    worst = summary.segments.cohorts[0]
    assert dict(worst.segment) == {"region": "r3"}
    assert worst.drop == pytest.approx(0.2)
    assert worst.significant and worst.rows == 500 and worst.baseline_rows == 1000
    assert worst.baseline_source == "reference"
    other_regions = [c for c in summary.segments.cohorts if c.segment.get("region") not in (None, "r3")]
    assert other_regions and all(not c.significant for c in other_regions)
    assert summary.segments.segment("region", "r3").quality == pytest.approx(0.7)
    # its channels fell with it: said so, and ranked right after it
    within = [c for c in summary.segments.cohorts if c.segment.get("region") == "r3" and len(c.segment) == 2]
    assert {c.explained_by for c in within} == {"region=r3"}
    assert [len(c.segment) for c in summary.segments.cohorts[:3]] == [1, 2, 2]


def test_a_tiny_cohort_with_a_larger_fall_ranks_below_a_sure_fall_and_is_not_significant(
    sqlite_store: Store,
) -> None:
    service = _service(sqlite_store, segment_min_rows=10, segment_top=11, segments=["region"])
    reference = [Cohort(r, 1000, 0.9) for r in [*REGIONS, "tiny"]]
    keep_reference(sqlite_store, service, _rows(reference, seed=1))
    window = [*(Cohort(r, 500, 0.7 if r == "r3" else 0.9) for r in REGIONS), Cohort("tiny", 10, 0.6)]
    _window(sqlite_store, service, _rows(window, seed=2))
    cohorts = _check(sqlite_store, service).segments.cohorts
    tiny = next(c for c in cohorts if dict(c.segment) == {"region": "tiny"})
    assert tiny.drop == pytest.approx(0.3) and tiny.rows == 10
    assert not tiny.significant
    assert dict(cohorts[0].segment) == {"region": "r3"}


def test_segment_drift_is_judged_against_the_reference_rows_of_that_segment(sqlite_store: Store) -> None:
    service = _service(sqlite_store, segments=["region"])
    # Big enough segments that Wasserstein (Evidently's pick past 1,000 reference rows) is not reading noise.
    regions = REGIONS[:4]
    keep_reference(sqlite_store, service, _rows([Cohort(r, 4000, 0.9) for r in regions], seed=1))
    window = [Cohort(r, 2000, 0.9, x_mean=0.5 if r == "r2" else 0.0) for r in regions]
    _window(sqlite_store, service, _rows(window, seed=2))
    segments = _check(sqlite_store, service).segments
    r2 = segments.segment("region", "r2")
    assert r2.drifted_features == ("x",)
    assert (r2.reference, r2.reference_rows) == ("segment", 4000)
    assert [s.value for s in segments.segments if s.drifted_features] == ["r2"]
    assert segments.segment("region", "r1").drift_share == 0.0


def test_without_labels_in_the_reference_a_cohorts_first_labelled_window_is_its_baseline(sqlite_store: Store) -> None:
    service = _service(sqlite_store, segments=["region"])
    keep_reference(sqlite_store, service, _rows([Cohort(r, 1000, 0.9) for r in REGIONS], seed=1)[["x", "region"]])
    _window(sqlite_store, service, _rows([Cohort(r, 500, 0.9) for r in REGIONS], seed=2))
    first = _check(sqlite_store, service)
    assert first.segments.cohorts == ()  # nothing to compare with yet: this window becomes the baseline
    later = [Cohort(r, 500, 0.6 if r == "r7" else 0.9) for r in REGIONS]
    _window(sqlite_store, service, _rows(later, seed=3), start=START + HOUR, prefix="v")
    worst = _check(sqlite_store, service, start=START + HOUR).segments.cohorts[0]
    assert dict(worst.segment) == {"region": "r7"}
    assert worst.baseline_source == "first_window"
    assert worst.drop == pytest.approx(0.3)


def test_segments_travel_through_the_stored_summary_and_older_summaries_decode_without_them(
    sqlite_store: Store,
) -> None:
    service = _service(sqlite_store)
    keep_reference(sqlite_store, service, _rows([Cohort(r, 1000, 0.9) for r in REGIONS], seed=1))
    _window(sqlite_store, service, _rows([Cohort(r, 500, 0.9) for r in REGIONS], seed=2))
    stored = sqlite_store.list_checks(service)[0].summary if _check(sqlite_store, service) else None
    assert stored is not None and stored.segments is not None
    assert CheckSummary.decode(stored.encode()) == stored
    assert {s.value for s in stored.segments.segments if s.column == "channel"} == {"app", "web"}
    assert CheckSummary.decode({"rows": 5, "drift_share": 0.1}).segments is None


def test_a_segment_that_is_not_a_categorical_feature_is_refused_at_config_load() -> None:
    features = [{"name": "region", "type": "categorical"}, {"name": "x"}]
    with pytest.raises(ValidationError, match=r"segments\[1\]: 'regio' is not a feature of service 'shop'"):
        Settings.model_validate({"services": [{"name": "shop", "features": features, "segments": ["region", "regio"]}]})
    with pytest.raises(ValidationError, match=r"segments\[0\]: 'x' is a numerical feature"):
        Settings.model_validate({"services": [{"name": "shop", "features": features, "segments": ["x"]}]})


def test_a_service_without_a_schema_segments_by_a_key_its_predictions_send(sqlite_store: Store) -> None:
    service = sqlite_store.upsert_service("open", task="classification", target="target", features=(),
                                          config={"segments": ["region"]})  # fmt: skip
    keep_reference(sqlite_store, service, _rows([Cohort(r, 1000, 0.9) for r in REGIONS], seed=1))
    _window(sqlite_store, service, _rows([Cohort(r, 500, 0.7 if r == "r4" else 0.9) for r in REGIONS], seed=2))
    summary = _check(sqlite_store, service)
    assert {s.value for s in summary.segments.segments} == set(REGIONS)
    assert dict(summary.segments.cohorts[0].segment) == {"region": "r4"}
    assert Settings.model_validate({"services": [{"name": "open", "segments": ["region"]}]}).services[0].segments == (
        "region",
    )
