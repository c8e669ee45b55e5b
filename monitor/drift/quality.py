"""Realized model quality, its baseline per model version, and the decay between them.

Classification: accuracy, precision, recall, F1, ROC AUC and log loss. With classes {0, 1}
(or booleans) precision/recall/F1 are those of class 1; otherwise macro averages.
Regression: MAE, RMSE, MAPE and R2.

Decay is always "positive = worse": ``baseline - current`` for metrics where higher is
better, ``current - baseline`` for error metrics (the direction is
``monitor.quality_metrics``'s); relative decay divides by ``|baseline|``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.check_summary import Change
from monitor.drift.reference import PREDICTION, PROBA_PREFIX, target_column, value_key
from monitor.quality_metrics import metric as quality_metric
from monitor.records import Service

POSITIVE = "1"


@dataclass(frozen=True)
class Outcomes:
    """Labelled rows of a window or reference: truth, prediction and class probabilities."""

    truth: pd.Series
    predicted: pd.Series
    proba: pd.DataFrame | None = None  # one column per class key, rows aligned with truth

    def __len__(self) -> int:
        return len(self.truth)


def measure(task: str, outcomes: Outcomes) -> dict[str, float] | None:
    """The quality metrics of ``outcomes`` (None when there are no labelled rows)."""
    if len(outcomes) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = _classification(outcomes) if task == "classification" else _regression(outcomes)
    return {k: v for k, v in found.items() if v is not None and math.isfinite(v)} or None


def _classification(o: Outcomes) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    truth, predicted = o.truth.map(value_key), o.predicted.map(value_key)
    averaging = _averaging(set(truth) | set(predicted))
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision": float(precision_score(truth, predicted, zero_division=0, **averaging)),
        "recall": float(recall_score(truth, predicted, zero_division=0, **averaging)),
        "f1": float(f1_score(truth, predicted, zero_division=0, **averaging)),
        "roc_auc": _roc_auc(truth, o.proba),
        "log_loss": _log_loss(truth, o.proba),
    }


def _averaging(classes: set[str]) -> dict[str, str]:
    binary = classes <= {"0", "1"}
    return {"average": "binary", "pos_label": POSITIVE} if binary else {"average": "macro"}


def _roc_auc(truth: pd.Series, proba: pd.DataFrame | None) -> float | None:
    from sklearn.metrics import roc_auc_score

    if proba is None or truth.nunique() < 2:
        return None
    try:
        if set(truth) <= {"0", "1"} and POSITIVE in proba.columns:
            return float(roc_auc_score(truth == POSITIVE, proba[POSITIVE]))
        normalized = proba.div(proba.sum(axis=1), axis=0)
        return float(roc_auc_score(truth, normalized, multi_class="ovr", labels=list(proba.columns)))
    except ValueError:
        return None  # classes missing from the probabilities


def _log_loss(truth: pd.Series, proba: pd.DataFrame | None) -> float | None:
    from sklearn.metrics import log_loss

    if proba is None or not set(truth) <= set(proba.columns):
        return None
    try:
        return float(log_loss(truth, proba.clip(1e-15, 1), labels=list(proba.columns)))
    except ValueError:
        return None


def _regression(o: Outcomes) -> dict[str, float | None]:
    from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, r2_score

    truth = pd.to_numeric(o.truth, errors="coerce").to_numpy(dtype=float)
    predicted = pd.to_numeric(o.predicted, errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(truth) & np.isfinite(predicted)
    truth, predicted = truth[keep], predicted[keep]
    if truth.size == 0:
        return {}
    return {
        "mae": float(mean_absolute_error(truth, predicted)),
        "rmse": float(np.sqrt(np.mean((truth - predicted) ** 2))),
        "mape": float(mean_absolute_percentage_error(truth, predicted)),
        "r2": float(r2_score(truth, predicted)) if truth.size > 1 else None,
    }


def decay(baseline: Mapping[str, float] | None, current: Mapping[str, float] | None) -> dict[str, Change] | None:
    """Per metric both have: how much worse than the baseline it is (positive meaning worse)."""
    if not baseline or not current:
        return None
    out: dict[str, Change] = {}
    for metric in sorted(set(baseline) & set(current)):
        absolute = -quality_metric(metric).improvement(current[metric], baseline[metric])
        relative = absolute / abs(baseline[metric]) if baseline[metric] else None
        out[metric] = Change(absolute, relative)
    return out or None


def reference_outcomes(frame: pd.DataFrame, service: Service) -> Outcomes | None:
    """The labelled, predicted rows of a reference frame, if it has both columns."""
    target = target_column(service)
    if target not in frame.columns or PREDICTION not in frame.columns:
        return None
    rows = frame[frame[target].notna() & frame[PREDICTION].notna()]
    proba_columns = [c for c in rows.columns if str(c).startswith(PROBA_PREFIX)]
    proba = None
    if proba_columns:
        proba = rows[proba_columns].rename(columns=lambda c: str(c)[len(PROBA_PREFIX) :]).reset_index(drop=True)
    return Outcomes(rows[target].reset_index(drop=True), rows[PREDICTION].reset_index(drop=True), proba)


def baseline_from_reference(frame: pd.DataFrame, service: Service) -> dict[str, float] | None:
    """The reference's quality (the baseline decay is measured against), if it has labels and predictions."""
    outcomes = reference_outcomes(frame, service)
    return None if outcomes is None else measure(service.task, outcomes)
