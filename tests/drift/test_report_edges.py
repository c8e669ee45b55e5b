"""Inputs a check can only partly use end cleanly: skipped features say why, a report renders or
answers 409, and references or windows no store can hold are refused naming the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.drift.check import CheckRunner
from monitor.drift.reference import frame_from_records, keep_reference
from monitor.drift.report import check_report
from monitor.errors import Conflict, ValidationFailed
from monitor.records import Feature, PredictionRecord, Service
from monitor.store import Store

START = 1_700_000_000.0
ROWS = 60


def _window(store: Store, service: Service, features: dict[str, object]) -> None:
    records = [
        PredictionRecord(request_id=f"r{i}", ts=START + i, features=features, prediction=i % 2) for i in range(ROWS)
    ]
    store.add_predictions(service, records)


def _reference(**columns: object) -> pd.DataFrame:
    labels = [0, 1] * (ROWS // 2)
    return pd.DataFrame({**columns, "target": labels, "prediction": labels})


def test_a_window_sharing_no_column_with_the_reference_skips_its_features_and_its_report_is_a_conflict(
    store: Store,
) -> None:
    """A service without registered features: Evidently's preset divided by zero on no common column."""
    service = store.upsert_service("inferred", task="classification", target="target")
    keep_reference(store, service, pd.DataFrame({"x": np.arange(float(ROWS))}))
    _window(store, service, {"y": 1.5})
    check = CheckRunner(store).run(service, START, START + 3600)
    assert check.status == "ok" and check.error is None
    assert check.summary.encode()["skipped_features"] == {"x": "no prediction of the window has this feature"}
    with pytest.raises(Conflict, match=r"no column with values on both sides \(reference: x; window: y, prediction\)"):
        check_report(store, check.id)


def test_an_all_missing_numerical_feature_is_skipped_with_its_reason_and_the_report_renders(store: Store) -> None:
    """Evidently's numerical stats raised TypeError on a column of nothing but nulls."""
    service = store.upsert_service(
        "nulls", task="classification", target="target", features=(Feature("x"), Feature("z"))
    )
    keep_reference(store, service, _reference(x=np.arange(float(ROWS)), z=np.arange(float(ROWS))))
    _window(store, service, {"x": None, "z": 3.0})
    check = CheckRunner(store).run(service, START, START + 3600)
    assert check.status == "ok" and check.error is None
    assert [f["name"] for f in check.results["features"]] == ["z"]
    assert check.summary.encode()["skipped_features"] == {
        "x": f"none of the window's {ROWS} sampled values is a numerical value (all missing?)"
    }
    page = check_report(store, check.id).decode()
    assert "Data drift" in page and "z" in page


def test_a_feature_the_reference_lacks_is_skipped_with_its_reason(store: Store) -> None:
    service = store.upsert_service(
        "partial", task="classification", target="target", features=(Feature("x"), Feature("gone"))
    )
    keep_reference(store, service, _reference(x=np.arange(float(ROWS))))
    _window(store, service, {"x": 2.0, "gone": 1.0})
    check = CheckRunner(store).run(service, START, START + 3600)
    assert check.summary.encode()["skipped_features"] == {"gone": "the reference has no such column"}


@pytest.mark.parametrize("bound", [5.6e20, -1e30, float("inf")])
def test_a_check_of_a_window_past_year_9999_is_refused_naming_the_bound(store: Store, bound: float) -> None:
    """The window's minute overflowed the BIGINT index (OverflowError, a 500 at POST /checks)."""
    service = store.upsert_service("bounds", task="classification", features=(Feature("x"),))
    with pytest.raises(ValidationFailed, match=r"^end: expected epoch seconds between -62135596800 \(year 1\)"):
        CheckRunner(store).run(service, START, bound)
    with pytest.raises(ValidationFailed, match=r"^start: expected epoch seconds between"):
        CheckRunner(store).run(service, -bound, START)
    assert store.list_checks(service) == []


def test_a_reference_record_nested_a_thousand_levels_deep_is_refused_naming_it() -> None:
    """pandas recursed into it until RecursionError."""
    nested: object = 1
    for _ in range(1000):
        nested = {"a": nested}
    with pytest.raises(
        ValidationFailed, match=r"^records\[1\]\.x: expected a number, text, boolean or null, got an object"
    ):
        frame_from_records([{"x": 1}, {"x": nested}])
    with pytest.raises(
        ValidationFailed, match=r"^records\[0\]\.x: expected a number, text, boolean or null, got a list"
    ):
        frame_from_records([{"x": [nested]}])
    with pytest.raises(ValidationFailed, match=r"^records\[0\]: expected an object of column: value, got list"):
        frame_from_records([[1, 2]])  # type: ignore[list-item]


def test_a_reference_of_booleans_in_a_numerical_feature_renders(store: Store) -> None:
    """Evidently subtracted the numpy booleans of the reference (TypeError, a 500 at GET /report)."""
    service = store.upsert_service("flags", task="classification", target="target", features=(Feature("x"),))
    keep_reference(store, service, _reference(x=[True, False] * (ROWS // 2)))
    _window(store, service, {"x": 1})
    check = CheckRunner(store).run(service, START, START + 3600)
    page = check_report(store, check.id).decode()
    assert "Data drift" in page


def test_list_predictions_render(store: Store) -> None:
    """The API takes a prediction as a list of scalars; Evidently hashed each as a category and raised
    TypeError ("unhashable type: 'list'", a 500 at GET /report)."""
    service = store.upsert_service("lists", task="classification", target="target", features=(Feature("x"),))
    keep_reference(store, service, _reference(x=np.arange(float(ROWS))))
    records = [
        PredictionRecord(request_id=f"r{i}", ts=START + i, features={"x": float(i)}, prediction=[i % 2, 1])
        for i in range(ROWS)
    ]
    store.add_predictions(service, records)
    check = CheckRunner(store).run(service, START, START + 3600)
    page = check_report(store, check.id).decode()
    assert "Data drift" in page


def test_a_text_feature_without_a_vocabulary_is_skipped_naming_why_and_the_report_renders(store: Store) -> None:
    """Text of one-letter tokens leaves Evidently's TF-IDF no vocabulary: its ValueError ("empty
    vocabulary") made POST /checks answer 500. The feature is skipped, and the rest is tested."""
    service = store.upsert_service(
        "notes", task="classification", target="target", features=(Feature("note", "text"), Feature("x"))
    )
    keep_reference(store, service, _reference(note=["a b"] * ROWS, x=np.arange(float(ROWS))))
    _window(store, service, {"note": "c", "x": 3.0})
    check = CheckRunner(store).run(service, START, START + 3600)
    assert check.status == "ok" and check.error is None
    assert [f["name"] for f in check.results["features"]] == ["x"]
    assert "note" in check.summary.encode()["skipped_features"]
    assert "vocabulary" in check.summary.encode()["skipped_features"]["note"]
    page = check_report(store, check.id).decode()
    assert "Data drift" in page and "text columns left out: note" in page
