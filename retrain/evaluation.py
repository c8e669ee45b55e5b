"""Scoring challenger and champion on the same held-out data, and the promotion gate.

Metrics (computed with scikit-learn on each model's pyfunc predictions, the equivalent of
``mlflow.models.evaluate``'s default metrics): classification ``accuracy``, ``f1``,
``precision``, ``recall`` (binary for 0/1 labels, else macro-averaged); regression ``rmse``,
``mae`` (lower is better: ``monitor.quality_metrics`` says which way each metric runs) and
``r2``. The gate (``RetrainConfig.gate``) passes when the
challenger is strictly better on ``metric`` by at least ``min_gain`` (absolute) and
``min_relative_gain`` (fraction of the champion's value), the gain is larger than the noise
of the holdout (its paired bootstrap interval at ``confidence`` lies above zero, see
``retrain.significance``), and the challenger meets every floor in ``floors`` (a ceiling for
lower-is-better metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import GateConfig
from monitor.errors import ConfigError
from monitor.quality_metrics import metric as quality_metric

if TYPE_CHECKING:
    import pandas as pd

    from retrain.significance import Interval

CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall")
REGRESSION_METRICS = ("rmse", "mae", "r2")
BINARY_VALUES = frozenset({"0", "1", "True", "False", "0.0", "1.0"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's outcome and the numbers behind it."""

    passed: bool
    reason: str
    metric: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    gain: float | None
    interval: Interval | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the decision record and the job result."""
        return {
            "passed": self.passed,
            "metric": self.metric,
            "challenger": self.challenger,
            "champion": self.champion,
            "gain": self.gain,
            "interval": self.interval.as_dict() if self.interval else None,
        }


def score(predict: Callable[[pd.DataFrame], Any], holdout: pd.DataFrame, target: str, task: str) -> dict[str, float]:
    """Metrics of ``predict`` on ``holdout`` (features plus the ``target`` column)."""
    return metrics(holdout[target].to_numpy(), predictions(predict, holdout, target), task)


def predictions(predict: Callable[[pd.DataFrame], Any], holdout: pd.DataFrame, target: str) -> Any:
    """What ``predict`` says for each row of ``holdout``, as a 1-D array (its first output column)."""
    import numpy as np

    return np.asarray(predict(holdout.drop(columns=[target]))).reshape(len(holdout), -1)[:, 0]


def metrics(truth: Any, predicted: Any, task: str) -> dict[str, float]:
    """The task's metrics of ``predicted`` against ``truth`` (1-D arrays of the same length)."""
    if task == "classification":
        return _classification(truth, predicted)
    return _regression(truth.astype(float), predicted.astype(float))


def is_binary(values: Any) -> bool:
    """True when every class value reads as 0 or 1 (then class 1 is the positive one)."""
    return {str(v) for v in values} <= BINARY_VALUES


def _classification(truth: Any, predicted: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    binary = is_binary(truth) and is_binary(predicted)
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


def decide(
    gate: GateConfig,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    interval: Interval | None = None,
) -> Verdict:
    """Apply the gate to the challenger's and champion's held-out metrics, and to the interval
    of the gain on the same rows where one was computed (``retrain.significance.gain_interval``)."""
    missed = _missed_floors(gate, challenger)
    if missed:
        return Verdict(False, "below floor: " + "; ".join(missed), gate.metric, challenger, champion, None)
    if champion is None:
        return Verdict(True, "no champion to beat; floors met", gate.metric, challenger, None, None)
    new, old = challenger[gate.metric], champion[gate.metric]
    gain = quality_metric(gate.metric).improvement(new, old)
    relative = gain / abs(old) if old else (float("inf") if gain > 0 else 0.0)
    numbers = f"{gate.metric} {new:.4f} vs champion {old:.4f} (gain {gain:+.4f}, {relative:+.1%})"
    if gain <= 0 or gain < gate.min_gain or relative < gate.min_relative_gain:
        wanted = f"needs > 0, >= {gate.min_gain} absolute and >= {gate.min_relative_gain:.1%} relative"
        return Verdict(False, f"not better enough: {numbers}; {wanted}", gate.metric, challenger, champion, gain)
    if interval is not None and not interval.significant:
        reason = f"not significantly better: {numbers}; the gain's {interval} includes 0"
        return Verdict(False, reason, gate.metric, challenger, champion, gain, interval)
    shown = f"; {interval}" if interval is not None else ""
    return Verdict(True, f"better: {numbers}{shown}", gate.metric, challenger, champion, gain, interval)


def _missed_floors(gate: GateConfig, metrics: dict[str, float]) -> list[str]:
    missed = []
    for name, bound in gate.floors.items():
        value = metrics[name]
        higher = quality_metric(name).higher_is_better
        if (value < bound) if higher else (value > bound):
            missed.append(f"{name} {value:.4f} {'below floor' if higher else 'above ceiling'} {bound}")
    return missed
