"""Dataset sources naming the store window: credentials stay out of MLflow, the JSON round-trips."""

from __future__ import annotations

import pytest

from retrain.lineage import StoreWindowSource, redacted


def test_a_store_password_never_reaches_mlflow() -> None:
    assert redacted("postgresql://mlwatch:s3cret@db:5432/mlwatch") == "postgresql://mlwatch:***@db:5432/mlwatch"
    assert redacted("sqlite:////srv/.mlwatch/mlwatch.db") == "sqlite:////srv/.mlwatch/mlwatch.db"


def test_a_store_window_source_reads_back_from_its_json() -> None:
    source = StoreWindowSource("sqlite:///m.db", "credit", "training", 10.0, 20.0, {"reference": 5, "production": 7})
    again = StoreWindowSource.from_json(source.to_json())
    assert again.to_dict() == source.to_dict()
    assert again.to_dict()["uri"] == "mlwatch://credit/training?start=10.0&end=20.0"
    with pytest.raises(NotImplementedError, match=r"are in the mlwatch store sqlite:///m\.db"):
        again.load()
