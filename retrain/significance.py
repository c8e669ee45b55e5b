"""Whether a challenger's gain over the champion is larger than the noise of the holdout.

Both models are scored on the same rows, so the test is paired: the rows are drawn again
with replacement ``ROUNDS`` times (a fixed seed, so a decision can be reproduced), each
draw scores both models on the same rows, and the gain's interval at the gate's
``confidence`` is read from the gains of the draws (percentile bootstrap). The gate wants
the whole interval above zero: on 2,000 rows a gain of 0.0008 in accuracy is two rows,
well inside the noise, and is refused as not significantly better.

The metrics are computed for all draws at once with numpy, for any metric the gate knows
(1,000 draws of 50,000 rows: under a second for classification, a few seconds for regression); with every row counted
once they equal ``retrain.evaluation.score``'s (a test keeps them equal).

    >>> gain_interval("accuracy", "classification", truth, challenger, champion, 0.95)
    Interval(low=-0.0036, high=0.0052, confidence=0.95, rows=2000)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.quality_metrics import metric as quality_metric
from retrain.evaluation import is_binary

ROUNDS = 1000
SEED = 0
CELLS_PER_CHUNK = 1_000_000
"""Draw weights held at once (8 MB), so a large regression holdout is drawn in chunks of rounds."""


@dataclass(frozen=True, slots=True)
class Interval:
    """The bootstrap interval of the gain (positive: the challenger is better) at ``confidence``."""

    low: float
    high: float
    confidence: float
    rows: int

    @property
    def significant(self) -> bool:
        """True when the whole interval lies above zero."""
        return self.low > 0

    def as_dict(self) -> dict[str, float]:
        """Plain values for the decision record."""
        return {"low": self.low, "high": self.high, "confidence": self.confidence, "rows": self.rows}

    def __str__(self) -> str:
        return f"{self.confidence:.0%} interval [{self.low:+.4f}, {self.high:+.4f}] on {self.rows} holdout rows"


class Draws:
    """Bootstrap draws of a holdout, as sums over the drawn rows of any per-row values.

    Classification draws count cells (rows alike in truth and both predictions, a few
    whatever the size of the holdout), so a draw is a multinomial over them; regression
    draws hold the drawn row indices. ``Draws.once`` counts every row once (the full holdout).
    """

    def __init__(self, *, weights: Any = None, indices: Any = None) -> None:
        self._weights = None if weights is None else np.asarray(weights, dtype=float)
        self._indices = indices

    @classmethod
    def once(cls, rows: int) -> Draws:
        """One draw that is the holdout itself."""
        return cls(weights=np.ones((1, rows)))

    def sum(self, values: Any) -> Any:
        """Per draw, the sum of ``values`` (one per row or cell) over what the draw took."""
        if self._weights is not None:
            return self._weights @ np.asarray(values, dtype=float)
        return np.asarray(values, dtype=float)[self._indices].sum(axis=1)

    def size(self) -> Any:
        """Per draw, the number of rows drawn."""
        if self._weights is not None:
            return self._weights.sum(axis=1)
        return np.full(len(self._indices), self._indices.shape[1], dtype=float)


def gain_interval(
    metric: str,
    task: str,
    truth: Any,
    challenger: Any,
    champion: Any,
    confidence: float,
    *,
    rounds: int = ROUNDS,
    seed: int = SEED,
) -> Interval:
    """The paired bootstrap interval of the challenger's gain in ``metric`` over the champion."""
    truth, challenger, champion, binary = _encoded(task, truth, challenger, champion)
    rows = len(truth)
    cells, sizes = _cells(task, truth, challenger, champion)
    labels = (None, None) if binary else (np.union1d(truth, challenger), np.union1d(truth, champion))
    sign = 1.0 if quality_metric(metric).higher_is_better else -1.0
    rng = np.random.default_rng(seed)
    chunk = max(1, CELLS_PER_CHUNK // rows)
    gains = []
    for start in range(0, rounds, chunk):
        count = min(chunk, rounds - start)
        if sizes is None:
            draws = Draws(indices=rng.integers(0, rows, size=(count, rows)))
        else:
            draws = Draws(weights=rng.multinomial(rows, sizes / rows, size=count))
        new = metric_values(metric, task, cells[0], cells[1], draws, labels=labels[0])
        old = metric_values(metric, task, cells[0], cells[2], draws, labels=labels[1])
        gains.append(sign * (new - old))
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(np.concatenate(gains), [alpha, 1.0 - alpha])
    return Interval(float(low), float(high), confidence, rows)


def difference_interval(
    metric: str,
    task: str,
    truth: Any,
    predicted: Any,
    other_truth: Any,
    other_predicted: Any,
    confidence: float,
    *,
    rounds: int = ROUNDS,
    seed: int = SEED,
) -> Interval:
    """The bootstrap interval of how much better ``predicted`` scores on its rows than
    ``other_predicted`` on its own (positive: better), for two models that answered different
    requests (a canary and the champion): unpaired, each set of rows drawn again on its own."""
    rows = len(truth)
    both = np.concatenate([np.asarray(predicted), np.asarray(other_predicted)])
    every, said, _, binary = _encoded(task, np.concatenate([np.asarray(truth), np.asarray(other_truth)]), both, both)
    rng = np.random.default_rng(seed)
    values = []
    for t, p in ((every[:rows], said[:rows]), (every[rows:], said[rows:])):
        labels = None if binary else np.union1d(t, p)
        values.append(_drawn(metric, task, t, p, labels, rounds, rng))
    sign = 1.0 if quality_metric(metric).higher_is_better else -1.0
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(sign * (values[0] - values[1]), [alpha, 1.0 - alpha])
    return Interval(float(low), float(high), confidence, rows + len(other_truth))


def _drawn(metric: str, task: str, truth: Any, predicted: Any, labels: Any, rounds: int, rng: Any) -> Any:
    """``metric`` of one model on ``rounds`` draws of its own rows."""
    rows = len(truth)
    if task == "classification":
        found, sizes = np.unique(np.stack([truth, predicted], axis=1), axis=0, return_counts=True)
        draws = Draws(weights=rng.multinomial(rows, sizes / rows, size=rounds))
        return metric_values(metric, task, found[:, 0], found[:, 1], draws, labels=labels)
    chunk = max(1, CELLS_PER_CHUNK // rows)
    parts = []
    for start in range(0, rounds, chunk):
        draws = Draws(indices=rng.integers(0, rows, size=(min(chunk, rounds - start), rows)))
        parts.append(metric_values(metric, task, truth, predicted, draws))
    return np.concatenate(parts)


def metric_values(metric: str, task: str, truth: Any, predicted: Any, draws: Draws, *, labels: Any = None) -> Any:
    """``metric`` of ``predicted`` against ``truth`` (1-D, one value per row or cell) in each draw.

    Classes are integer codes (see ``_encoded``); a binary task scores class 1, another is
    macro-averaged over ``labels`` (the classes of the full holdout, as scikit-learn takes them).
    """
    if task != "classification":
        return _REGRESSION[metric](truth.astype(float), predicted.astype(float), draws)
    if metric == "accuracy":
        return _ratio(draws.sum(truth == predicted), draws.size())
    classes = [1] if labels is None else list(labels)
    per_class = [_COUNTED[metric](*_counts(truth, predicted, draws, c)) for c in classes]
    return np.mean(per_class, axis=0)


def _cells(task: str, truth: Any, challenger: Any, champion: Any) -> tuple[tuple[Any, Any, Any], Any]:
    """The distinct (truth, challenger, champion) rows and how many of each; regression rows
    as they are, with no sizes (they are drawn by index)."""
    if task != "classification":
        return (truth, challenger, champion), None
    found, sizes = np.unique(np.stack([truth, challenger, champion], axis=1), axis=0, return_counts=True)
    return (found[:, 0], found[:, 1], found[:, 2]), sizes.astype(float)


def _encoded(task: str, truth: Any, challenger: Any, champion: Any) -> tuple[Any, Any, Any, bool]:
    """The three columns as numbers, and whether the task is binary: floats for regression;
    for classification 0/1 where every value is binary (as ``score`` reads them), else codes
    of the values as strings."""
    columns = [np.asarray(c) for c in (truth, challenger, champion)]
    if task != "classification":
        return columns[0].astype(float), columns[1].astype(float), columns[2].astype(float), False
    if all(is_binary(c) for c in columns):
        binary = [c.astype(float).astype(int) for c in columns]
        return binary[0], binary[1], binary[2], True
    _, codes = np.unique(np.concatenate([c.astype(str) for c in columns]), return_inverse=True)
    rows = len(columns[0])
    return codes[:rows], codes[rows : 2 * rows], codes[2 * rows :], False


def _counts(truth: Any, predicted: Any, draws: Draws, label: int) -> tuple[Any, Any, Any]:
    """True positives, false positives and false negatives of ``label`` per draw."""
    actual, said = truth == label, predicted == label
    return draws.sum(actual & said), draws.sum(~actual & said), draws.sum(actual & ~said)


def _ratio(top: Any, bottom: Any) -> Any:
    """``top / bottom``, 0 where ``bottom`` is 0 (scikit-learn's ``zero_division=0``)."""
    return np.divide(top, bottom, out=np.zeros(np.shape(top), dtype=float), where=bottom > 0)


def _r2(truth: Any, predicted: Any, draws: Draws) -> Any:
    errors = draws.sum((truth - predicted) ** 2)
    centred = truth - truth.mean()  # keeps the spread exact for targets far from zero
    squares = draws.sum(centred**2)
    spread = squares - _ratio(draws.sum(centred) ** 2, draws.size())
    constant = np.where(errors == 0, 1.0, 0.0)  # scikit-learn's answer when the truth does not vary
    return np.where(spread > 1e-12 * squares, 1.0 - _ratio(errors, spread), constant)


_COUNTED: dict[str, Callable[[Any, Any, Any], Any]] = {
    "precision": lambda tp, fp, fn: _ratio(tp, tp + fp),
    "recall": lambda tp, fp, fn: _ratio(tp, tp + fn),
    "f1": lambda tp, fp, fn: _ratio(2 * tp, 2 * tp + fp + fn),
}
_REGRESSION: dict[str, Callable[[Any, Any, Draws], Any]] = {
    "rmse": lambda truth, predicted, draws: np.sqrt(_ratio(draws.sum((truth - predicted) ** 2), draws.size())),
    "mae": lambda truth, predicted, draws: _ratio(draws.sum(np.abs(truth - predicted)), draws.size()),
    "r2": _r2,
}
