"""Label-free quality estimation from predicted probabilities (confidence-based, the CBPE idea).

If the probabilities are calibrated, a row predicted as class ``c`` with probability ``p``
is right with probability ``p``: summing those gives an expected confusion matrix, hence
expected accuracy and F1, before any label arrives.

For binary classifiers (classes 0/1) the probability of class 1 is first re-calibrated
with isotonic regression fitted on the reference's labelled probabilities, when the
reference has them (at least ``MIN_CALIBRATION_ROWS``); multiclass probabilities are used
as sent (normalized to sum to one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.drift.quality import POSITIVE, Outcomes
from monitor.drift.reference import value_key

MIN_CALIBRATION_ROWS = 100
Calibrator = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Estimate:
    """Expected accuracy and F1 of a window, from probabilities alone."""

    accuracy: float
    f1: float

    def metrics(self) -> dict[str, float]:
        """As ``{"accuracy", "f1"}``."""
        return {"accuracy": self.accuracy, "f1": self.f1}


def fit_calibrator(reference: Outcomes | None) -> Calibrator | None:
    """An isotonic map of P(class 1) fitted on the reference, when it is binary and has enough rows."""
    if reference is None or reference.proba is None or POSITIVE not in reference.proba.columns:
        return None
    truth = reference.truth.map(value_key)
    p = reference.proba[POSITIVE].to_numpy(dtype=float)
    keep = np.isfinite(p)
    if keep.sum() < MIN_CALIBRATION_ROWS or not set(truth) <= {"0", "1"}:
        return None
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(p[keep], (truth[keep] == POSITIVE).to_numpy(dtype=float))
    return model.predict


def estimate(
    predictions: pd.Series, proba: pd.DataFrame | None, calibrator: Calibrator | None = None
) -> Estimate | None:
    """Expected accuracy and F1 of the rows that have a prediction and probabilities."""
    if proba is None:
        return None
    predicted = predictions.map(lambda v: None if v is None else value_key(v))
    keep = predicted.notna().to_numpy() & proba.notna().any(axis=1).to_numpy()
    if not keep.any():
        return None
    predicted, proba = predicted[keep].reset_index(drop=True), proba[keep].reset_index(drop=True).fillna(0.0)
    if set(proba.columns) <= {"0", "1"} and set(predicted) <= {"0", "1"}:
        return _binary(predicted, _positive(proba), calibrator)
    return _multiclass(predicted, proba)


def _positive(proba: pd.DataFrame) -> np.ndarray:
    if POSITIVE in proba.columns:
        return proba[POSITIVE].to_numpy(dtype=float)
    return 1.0 - proba["0"].to_numpy(dtype=float)


def _binary(predicted: pd.Series, p: np.ndarray, calibrator: Calibrator | None) -> Estimate:
    p = np.clip(calibrator(p) if calibrator else p, 0.0, 1.0)
    said_positive = (predicted == POSITIVE).to_numpy()
    tp = p[said_positive].sum()
    fp = (1 - p[said_positive]).sum()
    fn = p[~said_positive].sum()
    tn = (1 - p[~said_positive]).sum()
    return Estimate(accuracy=float((tp + tn) / len(p)), f1=_f1(tp, fp, fn))


def _multiclass(predicted: pd.Series, proba: pd.DataFrame) -> Estimate:
    classes = sorted(set(proba.columns) | set(predicted))
    matrix = proba.reindex(columns=classes, fill_value=0.0).to_numpy(dtype=float)
    matrix = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1e-12, None)
    chosen = np.array([classes.index(c) for c in predicted])
    confidence = matrix[np.arange(len(chosen)), chosen]
    scores = []
    for i in range(len(classes)):
        said = chosen == i
        tp, fp, fn = matrix[said, i].sum(), (1 - matrix[said, i]).sum(), matrix[~said, i].sum()
        scores.append(_f1(tp, fp, fn))
    return Estimate(accuracy=float(confidence.mean()), f1=float(np.mean(scores)))


def _f1(tp: float, fp: float, fn: float) -> float:
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def estimate_error(estimated: dict[str, float] | None, realized: dict[str, float] | None) -> dict[str, float] | None:
    """``|estimated - realized|`` per metric both have (once labels have arrived)."""
    if not estimated or not realized:
        return None
    return {m: abs(estimated[m] - realized[m]) for m in estimated if m in realized} or None
