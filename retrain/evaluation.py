"""Scoring challenger and champion on the same held-out data, and the promotion gate.

Metrics (computed with scikit-learn on each model's pyfunc predictions, the equivalent of
``mlflow.models.evaluate``'s default metrics): classification ``accuracy``, ``f1``,
``precision``, ``recall`` (binary for 0/1 labels, else macro-averaged); regression ``rmse``,
``mae`` (lower is better) and ``r2``. The gate (``RetrainConfig.gate``) passes when the
challenger is strictly better on ``metric`` by at least ``min_gain`` (absolute) and
``min_relative_gain`` (fraction of the champion's value), and meets every floor in
``floors`` (a ceiling for lower-is-better metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import GateConfig
from monitor.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's outcome and the numbers behind it."""

    passed: bool
    reason: str
    metric: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    gain: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the decision record and the job result."""
        return {
            "passed": self.passed,
            "metric": self.metric,
            "challenger": self.challenger,
            "champion": self.champion,
            "gain": self.gain,
        }


def score(predict: Callable[[pd.DataFrame], Any], holdout: pd.DataFrame, target: str, task: str) -> dict[str, float]:
    """Metrics of ``predict`` on ``holdout`` (features plus the ``target`` column)."""
    import numpy as np

    truth = holdout[target].to_numpy()
    predicted = np.asarray(predict(holdout.drop(columns=[target]))).reshape(len(holdout), -1)[:, 0]
    if task == "classification":
        return _classification(truth, predicted)
    return _regression(truth.astype(float), predicted.astype(float))


def _classification(truth: Any, predicted: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    labels = {str(v) for v in truth} | {str(v) for v in predicted}
    binary = labels <= {"0", "1", "True", "False", "0.0", "1.0"}
    if binary:
        truth, predicted = truth.astype(float).astype(int), predicted.astype(float).astype(int)
    else:
        truth, predicted = truth.astype(str), predicted.astype(str)
    options: dict[str, Any] = {"average": "binary" if binary else "macro", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1": float(f1_score(truth, predicted, **options)),
        "precision": float(precision_score(truth, predicted, **options)),
        "recall": float(recall_score(truth, predicted, **options)),
    }


def _regression(truth: Any, predicted: Any) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(mean_squared_error(truth, predicted) ** 0.5),
        "mae": float(mean_absolute_error(truth, predicted)),
        "r2": float(r2_score(truth, predicted)),
    }


def check_gate_metric(gate: GateConfig, task: str) -> None:
    """ConfigError when the gate names a metric the task does not compute."""
    known = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    for name in (gate.metric, *gate.floors):
        if name not in known:
            raise ConfigError(f"retrain.gate: unknown {task} metric {name!r}; expected one of {', '.join(known)}")


def decide(gate: GateConfig, challenger: dict[str, float], champion: dict[str, float] | None) -> Verdict:
    """Apply the gate to the challenger's and champion's held-out metrics."""
    missed = _missed_floors(gate, challenger)
    if missed:
        return Verdict(False, "below floor: " + "; ".join(missed), gate.metric, challenger, champion, None)
    if champion is None:
        return Verdict(True, "no champion to beat; floors met", gate.metric, challenger, None, None)
    sign = -1.0 if gate.metric in LOWER_IS_BETTER else 1.0
    new, old = challenger[gate.metric], champion[gate.metric]
    gain = sign * (new - old)
    relative = gain / abs(old) if old else (float("inf") if gain > 0 else 0.0)
    numbers = f"{gate.metric} {new:.4f} vs champion {old:.4f} (gain {gain:+.4f}, {relative:+.1%})"
    if gain <= 0 or gain < gate.min_gain or relative < gate.min_relative_gain:
        wanted = f"needs > 0, >= {gate.min_gain} absolute and >= {gate.min_relative_gain:.1%} relative"
        return Verdict(False, f"not better enough: {numbers}; {wanted}", gate.metric, challenger, champion, gain)
    return Verdict(True, f"better: {numbers}", gate.metric, challenger, champion, gain)


def _missed_floors(gate: GateConfig, metrics: dict[str, float]) -> list[str]:
    missed = []
    for name, bound in gate.floors.items():
        value = metrics[name]
        ok = value <= bound if name in LOWER_IS_BETTER else value >= bound
        if not ok:
            missed.append(f"{name} {value:.4f} {'above ceiling' if name in LOWER_IS_BETTER else 'below floor'} {bound}")
    return missed
