"""The checks and references store methods, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.check_summary import CheckSummary
from monitor.drift.reference import frame_to_parquet, keep_reference
from monitor.errors import NotFound, ValidationFailed
from monitor.records import Feature
from monitor.store import Store


def _service(store: Store, name: str = "credit"):
    features = (Feature("income"), Feature("city", "categorical"))
    return store.upsert_service(name, task="classification", target="default", features=features)


def _add(store: Store, service, end: float, status: str = "ok") -> int:
    return store.add_check(
        service,
        window_start=end - 3600,
        window_end=end,
        model_version="3",
        status=status,
        trigger="schedule",
        summary=CheckSummary(rows=10, drift_share=0.5),
        results={"features": [{"name": "income", "drifted": True}]},
    )


def test_checks_come_back_newest_first_with_their_json(store: Store) -> None:
    service = _service(store)
    first, second = _add(store, service, 3600.0), _add(store, service, 7200.0, "no_data")
    listed = store.list_checks(service)
    assert [c.id for c in listed] == [second, first]
    got = store.get_check(first)
    assert got.summary == CheckSummary(rows=10, drift_share=0.5)
    assert got.results["features"][0]["drifted"] is True
    assert (got.window_start, got.window_end, got.model_version, got.status) == (0.0, 3600.0, "3", "ok")
    assert store.latest_check(service).id == second  # type: ignore[union-attr]


def test_list_checks_respects_limit_since_and_service(store: Store) -> None:
    service, other = _service(store), _service(store, "other")
    ids = [_add(store, service, float(3600 * i)) for i in range(1, 4)]
    _add(store, other, 3600.0)
    assert [c.id for c in store.list_checks(service, limit=2)] == ids[::-1][:2]
    created = store.get_check(ids[2]).created_at
    assert {c.id for c in store.list_checks(service, since=created)} <= set(ids)
    assert store.list_checks(service, since=created + 3600) == []
    assert store.latest_check(_service(store, "empty")) is None


def test_unknown_check_is_not_found_and_bad_status_is_refused(store: Store) -> None:
    service = _service(store)
    with pytest.raises(NotFound, match="unknown check 999"):
        store.get_check(999)
    with pytest.raises(NotFound, match="unknown check 999"):
        store.check_report(999)
    with pytest.raises(ValidationFailed, match="status: expected one of ok, no_data, error"):
        _add(store, service, 1.0, status="fine")


def test_check_report_is_kept_once_made(store: Store) -> None:
    check_id = _add(store, _service(store), 3600.0)
    assert store.check_report(check_id) is None
    store.set_check_report(check_id, b"<html>report</html>")
    assert store.check_report(check_id) == b"<html>report</html>"
    assert "report" not in store.get_check(check_id).summary.encode()


def _reference(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "income": rng.normal(50, 10, rows),
            "city": rng.choice(["a", "b", "c"], rows),
            "default": rng.integers(0, 2, rows),
            "prediction": rng.integers(0, 2, rows),
        }
    )


def test_reference_falls_back_to_any_version_and_caches_stats(store: Store) -> None:
    service = _service(store)
    frame = _reference()
    keep_reference(store, service, frame, source="test")
    got, stats = store.get_reference(service, "7")
    pd.testing.assert_frame_equal(got, frame)
    assert stats["rows"] == 200
    assert stats["columns"]["income"]["mean"] == pytest.approx(frame["income"].mean())
    assert sorted(stats["columns"]["city"]["values"]) == ["a", "b", "c"]
    assert stats["baseline"]["accuracy"] == pytest.approx((frame["default"] == frame["prediction"]).mean())


def test_reference_of_a_version_wins_over_the_any_version_one(store: Store) -> None:
    service = _service(store)
    keep_reference(store, service, _reference(100))
    keep_reference(store, service, frame_to_parquet(_reference(300)), model_version="2", source="mlflow")
    assert len(store.get_reference(service, "2")[0]) == 300
    assert len(store.get_reference(service, "1")[0]) == 100
    info = store.reference_info(service, "2")
    assert info is not None and (info.model_version, info.row_count, info.source) == ("2", 300, "mlflow")
    assert [r.model_version for r in store.list_references(service)] == ["", "2"]
    keep_reference(store, service, _reference(50), model_version="2")
    assert len(store.get_reference(service, "2")[0]) == 50


def test_missing_or_bad_reference_is_refused_clearly(store: Store) -> None:
    service = _service(store)
    with pytest.raises(NotFound, match="no reference data for model version '4'"):
        store.get_reference(service, "4")
    assert store.reference_info(service) is None
    with pytest.raises(ValidationFailed, match="expected a readable Parquet file"):
        keep_reference(store, service, b"not parquet at all")
    with pytest.raises(ValidationFailed, match="at least one row"):
        keep_reference(store, service, _reference().iloc[:0])


def test_sample_columns_is_sample_window_column_by_column(store: Store) -> None:
    from monitor.records import LabelRecord, PredictionRecord

    service = _service(store)
    records = [
        PredictionRecord(f"r{i}", 1000.0 + i, {"income": float(i), "city": "a"}, i % 2, {"0": 0.5, "1": 0.5}, None, "7")
        for i in range(300)
    ]
    store.add_predictions(service, records)
    store.add_labels(service, [LabelRecord(f"r{i}", 1, 5000.0) for i in range(0, 300, 3)])
    columns = store.sample_columns(service, 1000.0, 1300.0, limit=120)
    rows = store.sample_window(service, 1000.0, 1300.0, limit=120)
    assert len(columns) == len(rows) == 120
    by_income = sorted(
        zip(columns.features, columns.predictions, columns.labels, columns.has_label, strict=True),
        key=lambda x: x[0]["income"],
    )
    assert [(f, p, lab, has) for f, p, lab, has in by_income] == [
        (r.features, r.prediction, r.label, r.has_label) for r in sorted(rows, key=lambda r: r.features["income"])
    ]
    assert set(columns.model_versions) == {"7"} and columns.probabilities[0] == {"0": 0.5, "1": 0.5}
    assert len(store.sample_columns(service, 0.0, 10.0, limit=50)) == 0


def test_segment_baselines_are_kept_per_model_version_and_the_first_writer_of_a_cohort_wins(store: Store) -> None:
    service = _service(store)
    keep_reference(store, service, pd.DataFrame({"income": [1.0, 2.0], "city": ["a", "b"]}))
    first = {"region=eu": {"rows": 300, "mean": 0.9, "var": 0.09}}
    assert store.set_segment_baselines(service, "", "3", first) == first
    later = {"region=eu": {"rows": 500, "mean": 0.5, "var": 0.25}, "region=us": {"rows": 200, "mean": 0.8, "var": 0.16}}
    kept = store.set_segment_baselines(service, "", "3", later)
    assert kept == {**first, "region=us": later["region=us"]}
    assert store.reference_stats(service)["segment_baselines"] == {"3": kept}
    with pytest.raises(NotFound, match="has no reference for model version '7'"):
        store.set_segment_baselines(service, "7", "3", first)
