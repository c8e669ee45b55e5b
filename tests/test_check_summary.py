"""The stored check summary: one versioned record, and the JSON that today's rows already hold."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from monitor.check_summary import SUMMARY_VERSION, Change, CheckSummary, DriftVerdict
from monitor.store import Store
from monitor.store import schema as t

STORED = {
    "rows": 500,
    "reference_rows": 2000,
    "drift_share": 0.4,
    "dataset_drift": False,
    "drifted_features": ["income", "city"],
    "prediction_drift": {"method": "jensenshannon", "score": 0.12, "threshold": 0.1, "drifted": True},
    "target_drift": None,
    "label_coverage": 0.25,
    "quality": {"accuracy": 0.8, "f1": 0.7},
    "estimated_quality": {"accuracy": 0.82, "f1": 0.72},
    "baseline": {"accuracy": 0.9, "f1": 0.8},
    "decay": {"accuracy": {"absolute": 0.1, "relative": 0.111}, "f1": {"absolute": 0.1, "relative": 0.125}},
    "estimated_decay": {"accuracy": {"absolute": 0.08, "relative": 0.089}, "f1": {"absolute": 0.08, "relative": 0.1}},
    "estimate_error": {"accuracy": 0.02, "f1": 0.02},
    "data_quality": {
        "missing_share": 0.01,
        "new_categories": {"city": ["oslo"]},
        "out_of_range_share": {"income": 0.05},
        "type_mismatches": {},
    },
    "skipped_features": {"note": "the reference has no such column"},
    "drifted_derived": ["review:length"],
    "multivariate": {
        "drifted": True,
        "methods": {
            "pca": {
                "method": "pca",
                "score": 1.4,
                "lower": 0.8,
                "upper": 1.2,
                "drifted": True,
                "reference_rows": 2000,
                "current_rows": 500,
                "features": 4,
            }
        },
        "skipped": {"classifier": "not enabled"},
    },
}
"""A summary as checks wrote it before it had a version (every key the check wrote then)."""


def test_a_summary_stored_before_versions_decodes_and_encodes_to_the_same_json() -> None:
    summary = CheckSummary.decode(STORED)
    assert summary.prediction_drift == DriftVerdict("jensenshannon", 0.12, 0.1, True)
    assert summary.decay_of("f1") == Change(0.1, 0.125) and summary.decay_of("f1", estimated=True) == Change(0.08, 0.1)
    assert summary.multivariate is not None and summary.multivariate.methods["pca"].upper == 1.2
    assert summary.data_quality.new_categories == {"city": ["oslo"]}
    assert summary.encode() == {
        "version": SUMMARY_VERSION,
        **STORED,
        "target": None,
        "segments": None,
        "attribution": None,
    }  # keys added since
    assert CheckSummary.decode(summary.encode()) == summary


SEGMENTS = {
    "columns": ["region"],
    "metric": "accuracy",
    "segments": [
        {"column": "region", "value": "eu", "rows": 400, "drift_share": 0.5, "drifted_features": ["income"],
         "reference": "segment", "reference_rows": 900, "missing_share": 0.0, "out_of_range_share": 0.01,
         "quality": 0.7, "quality_source": "realized", "labelled": 400}
    ],
    "cohorts": [
        {"segment": {"region": "eu"}, "metric": "accuracy", "source": "realized", "rows": 400, "quality": 0.7,
         "baseline": 0.9, "baseline_rows": 900, "baseline_source": "reference", "drop": 0.2, "lower": 0.15,
         "significant": True, "explained_by": None}
    ],
    "skipped": {"channel": "no sampled prediction sends this key"},
}  # fmt: skip


def test_segments_and_cohorts_decode_typed_and_encode_to_the_same_json() -> None:
    summary = CheckSummary.decode({**STORED, "segments": SEGMENTS})
    assert summary.segments is not None
    assert summary.segments.segment("region", "eu").drifted_features == ("income",)
    assert summary.segments.cohort({"region": "eu"}).label == "region=eu"
    assert orjson.loads(orjson.dumps(summary.encode()))["segments"] == SEGMENTS


def test_a_summary_written_by_a_newer_version_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a check summary of version 1 or older, got version 2"):
        CheckSummary.decode({**STORED, "version": 2})


def test_a_partial_summary_takes_the_defaults() -> None:
    summary = CheckSummary.decode({"rows": 3})
    assert (summary.rows, summary.drift_share, summary.quality, summary.multivariate) == (3, 0.0, None, None)


def test_a_row_stored_before_versions_reads_back_typed(store: Store) -> None:
    service = store.upsert_service("credit", task="classification")
    values = {"service_id": service.id, "window_start": 0.0, "window_end": 3600.0, "created_at": 3600.0}
    values |= {"status": "ok", "trigger": "schedule", "summary": orjson.dumps(STORED).decode(), "results": "{}"}
    with store.engine.begin() as conn:
        conn.execute(t.checks.insert().values(**values))
    (check,) = store.list_checks(service)
    assert check.summary == CheckSummary.decode(STORED)
    assert check.summary.drifted_features == ("income", "city")


def test_the_summary_and_the_metric_registry_import_nothing_but_the_standard_library() -> None:
    code = (
        "import sys, monitor.check_summary, monitor.quality_metrics\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'monitor', 'retrain', 'dashboard', 'pandas',"
        " 'pydantic', 'sqlalchemy', 'numpy'}))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "['monitor', 'monitor.check_summary', 'monitor.quality_metrics']"
