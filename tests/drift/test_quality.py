"""Quality metrics, decay direction and label-free estimates, on small hand-checkable data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.drift.check import evaluate
from monitor.drift.estimate import estimate
from monitor.drift.loaded import Reference
from monitor.drift.quality import Outcomes, decay, measure
from monitor.drift.reference import column_stats
from monitor.drift.window import WindowSample
from monitor.records import Feature, Service


def test_regression_metrics_match_their_definitions() -> None:
    truth = pd.Series([1.0, 2.0, 4.0, 8.0])
    predicted = pd.Series([1.5, 2.0, 3.0, 10.0])
    got = measure("regression", Outcomes(truth, predicted))
    errors = predicted - truth
    assert got == pytest.approx(
        {
            "mae": errors.abs().mean(),
            "rmse": float(np.sqrt((errors**2).mean())),
            "mape": (errors.abs() / truth).mean(),
            "r2": 1 - (errors**2).sum() / ((truth - truth.mean()) ** 2).sum(),
        }
    )


def test_decay_is_positive_when_worse_for_both_kinds_of_metric() -> None:
    found = decay({"accuracy": 0.9, "mae": 2.0}, {"accuracy": 0.8, "mae": 3.0})
    assert found is not None
    assert (found["accuracy"].absolute, found["accuracy"].relative) == pytest.approx((0.1, 0.1 / 0.9))
    assert (found["mae"].absolute, found["mae"].relative) == pytest.approx((1.0, 0.5))
    assert decay(None, {"accuracy": 0.8}) is None


def test_multiclass_quality_uses_macro_averages_and_probabilities() -> None:
    truth = pd.Series(["a", "b", "c", "a"])
    predicted = pd.Series(["a", "b", "b", "a"])
    proba = pd.DataFrame({"a": [0.8, 0.1, 0.1, 0.6], "b": [0.1, 0.8, 0.6, 0.2], "c": [0.1, 0.1, 0.3, 0.2]})
    got = measure("classification", Outcomes(truth, predicted, proba))
    assert got is not None
    assert got["accuracy"] == 0.75
    assert got["recall"] == pytest.approx((1 + 1 + 0) / 3)
    assert got["roc_auc"] > 0.8 and got["log_loss"] > 0


def test_expected_accuracy_is_the_mean_confidence_of_the_predicted_class() -> None:
    proba = pd.DataFrame({"0": [0.9, 0.3, 0.4], "1": [0.1, 0.7, 0.6]})
    found = estimate(pd.Series([0, 1, 1]), proba)
    assert found is not None and found.accuracy == pytest.approx((0.9 + 0.7 + 0.6) / 3)
    # expected TP = 0.7 + 0.6, FP = 0.3 + 0.4, FN = 0.1
    assert found.f1 == pytest.approx(2 * 1.3 / (2 * 1.3 + 0.7 + 0.1))
    assert estimate(pd.Series([0, 1, 1]), None) is None


def test_regression_service_gets_error_metrics_and_prediction_drift() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 2000)
    reference = pd.DataFrame({"x": x, "target": 3 * x, "prediction": 3 * x + rng.normal(0, 0.5, 2000)})
    service = Service(1, "price", "regression", None, "target", (Feature("x"),))
    loaded = Reference(reference, column_stats(reference, service))
    x_now = rng.normal(0, 1, 1000)
    window = WindowSample(
        features=pd.DataFrame({"x": x_now}),
        predictions=pd.Series(3 * x_now + rng.normal(0, 1.5, 1000), dtype=object),  # three times noisier
        labels=pd.Series(3 * x_now, dtype=object),
        has_label=np.ones(1000, dtype=bool),
        proba=None,
        model_version=None,
    )
    found = evaluate(service, window, loaded).summary
    assert found.quality is not None and set(found.quality) == {"mae", "rmse", "mape", "r2"}
    assert found.decay is not None and found.decay["mae"].absolute > 0.5 and found.decay["r2"].absolute > 0
    assert found.prediction_drift is not None and found.prediction_drift.method == "wasserstein"
    assert found.estimated_quality is None  # no label-free estimate for regressors
