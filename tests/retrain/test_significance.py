"""The gate's noise test: a paired bootstrap of the gain on the holdout rows both models scored."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from monitor.config import GateConfig
from retrain.evaluation import decide, metrics
from retrain.significance import Draws, gain_interval, metric_values

ROWS = 2500


def _champion_and_truth(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and a champion right on about 82% of them."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, ROWS)
    wrong = rng.random(ROWS) < 0.18
    return truth, np.where(wrong, 1 - truth, truth)


def _challenger(truth: np.ndarray, champion: np.ndarray, *, fixes: int, breaks: int) -> np.ndarray:
    """The champion's answers with ``fixes`` of its errors put right and ``breaks`` right answers made wrong."""
    wrong = np.flatnonzero(champion != truth)
    right = np.flatnonzero(champion == truth)
    challenger = champion.copy()
    challenger[wrong[:fixes]] = truth[wrong[:fixes]]
    challenger[right[:breaks]] = 1 - truth[right[:breaks]]
    return challenger


def _verdict(truth: np.ndarray, champion: np.ndarray, challenger: np.ndarray, metric: str = "accuracy"):  # type: ignore[no-untyped-def]
    gate = GateConfig(metric=metric)
    interval = gain_interval(metric, "classification", truth, challenger, champion, gate.confidence)
    task = "classification"
    return decide(gate, metrics(truth, challenger, task), metrics(truth, champion, task), interval)


def test_a_gain_of_two_rows_in_2500_is_not_significantly_better_and_not_promoted() -> None:
    truth, champion = _champion_and_truth()
    verdict = _verdict(truth, champion, _challenger(truth, champion, fixes=21, breaks=19))
    assert verdict.gain == pytest.approx(0.0008)
    assert not verdict.passed
    assert verdict.reason.startswith("not significantly better: accuracy")
    assert "(gain +0.0008" in verdict.reason and "95% interval [-0.00" in verdict.reason
    assert "on 2500 holdout rows includes 0" in verdict.reason
    interval = verdict.as_dict()["interval"]
    assert interval["low"] < 0 < interval["high"] and interval["confidence"] == 0.95 and interval["rows"] == ROWS


def test_a_real_gain_passes_with_its_interval_above_zero() -> None:
    truth, champion = _champion_and_truth()
    verdict = _verdict(truth, champion, _challenger(truth, champion, fixes=150, breaks=30), metric="f1")
    assert verdict.passed and verdict.reason.startswith("better: f1")
    assert verdict.interval is not None and 0 < verdict.interval.low < verdict.gain < verdict.interval.high  # type: ignore[operator]
    assert "95% interval [+0.0" in verdict.reason


def test_the_interval_is_the_same_on_every_run_and_widens_with_confidence() -> None:
    truth, champion = _champion_and_truth()
    challenger = _challenger(truth, champion, fixes=60, breaks=20)
    first = gain_interval("accuracy", "classification", truth, challenger, champion, 0.95)
    assert gain_interval("accuracy", "classification", truth, challenger, champion, 0.95) == first
    wider = gain_interval("accuracy", "classification", truth, challenger, champion, 0.99)
    assert wider.low < first.low and wider.high > first.high


def test_a_lower_error_is_a_positive_gain_for_regression_metrics() -> None:
    rng = np.random.default_rng(2)
    truth = rng.normal(0, 1, 1000)
    champion, challenger = truth + rng.normal(0, 1.0, 1000), truth + rng.normal(0, 0.5, 1000)
    for metric in ("rmse", "mae", "r2"):
        interval = gain_interval(metric, "regression", truth, challenger, champion, 0.95)
        assert interval.significant, metric
        assert not gain_interval(metric, "regression", truth, champion, challenger, 0.95).significant


@pytest.mark.parametrize(
    ("task", "truth", "predicted"),
    [
        ("classification", [0, 1, 1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1, 1, 1]),
        ("classification", ["a", "b", "c", "a", "b", "c", "a", "a"], ["a", "b", "b", "a", "c", "c", "a", "d"]),
        ("regression", [1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.0, 2.0, 4.5, 6.0]),
    ],
)
def test_the_resampled_metrics_equal_the_gates_metrics_on_the_full_holdout(
    task: str, truth: list[object], predicted: list[object]
) -> None:
    expected = metrics(np.asarray(truth), np.asarray(predicted), task)
    once = Draws.once(len(truth))
    labels = None
    if task == "classification":  # the codes the interval works on
        codes = {v: i for i, v in enumerate(sorted({str(v) for v in truth + predicted}))}
        truth, predicted = [codes[str(v)] for v in truth], [codes[str(v)] for v in predicted]
        labels = None if len(codes) == 2 else np.union1d(truth, predicted)
    for metric, value in expected.items():
        found = metric_values(metric, task, np.asarray(truth), np.asarray(predicted), once, labels=labels)
        assert found[0] == pytest.approx(value), metric


def test_confidence_is_a_share_below_one() -> None:
    assert GateConfig().confidence == 0.95 and GateConfig(confidence=0).confidence == 0
    with pytest.raises(ValidationError, match="confidence"):
        GateConfig(confidence=1.0)
