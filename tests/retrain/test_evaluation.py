"""Scoring and the promotion gate."""

from __future__ import annotations

import pandas as pd
import pytest

from monitor.config import GateConfig
from monitor.errors import ConfigError
from retrain.evaluation import check_gate_metric, decide, score

F1 = {"accuracy": 0.8, "f1": 0.80, "precision": 0.8, "recall": 0.8}


def test_a_challenger_must_be_strictly_better_by_the_configured_gains() -> None:
    assert decide(GateConfig(metric="f1"), {**F1, "f1": 0.81}, F1).passed
    equal = decide(GateConfig(metric="f1"), F1, F1)
    assert not equal.passed and "not better enough" in equal.reason
    small = decide(GateConfig(metric="f1", min_gain=0.05), {**F1, "f1": 0.83}, F1)
    assert not small.passed and small.gain == pytest.approx(0.03)
    relative = decide(GateConfig(metric="f1", min_relative_gain=0.10), {**F1, "f1": 0.87}, F1)
    assert not relative.passed and ">= 10.0% relative" in relative.reason


def test_floors_bound_the_other_metrics_and_error_metrics_are_ceilings() -> None:
    gate = GateConfig(metric="f1", floors={"recall": 0.9})
    low = decide(gate, {**F1, "f1": 0.95, "recall": 0.85}, F1)
    assert not low.passed and "recall 0.8500 below floor 0.9" in low.reason
    regression = {"rmse": 1.0, "mae": 0.8, "r2": 0.5}
    lower = decide(GateConfig(metric="rmse", floors={"mae": 0.9}), {**regression, "rmse": 0.9}, regression)
    assert lower.passed and lower.gain == pytest.approx(0.1)
    capped = decide(GateConfig(metric="rmse", floors={"mae": 0.7}), {**regression, "rmse": 0.9}, regression)
    assert not capped.passed and "above ceiling" in capped.reason


def test_without_a_champion_only_the_floors_decide() -> None:
    assert decide(GateConfig(), F1, None).reason == "no champion to beat; floors met"
    assert not decide(GateConfig(floors={"accuracy": 0.9}), F1, None).passed


def test_scores_use_the_task_metrics_and_the_gate_names_known_ones() -> None:
    holdout = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1, 0, 1, 1]})
    metrics = score(lambda frame: [1] * len(frame), holdout, "y", "classification")
    assert metrics == {"accuracy": 0.75, "f1": pytest.approx(6 / 7), "precision": 0.75, "recall": 1.0}
    regression = score(lambda frame: frame["x"].to_numpy(), holdout.assign(y=[1.0, 2.0, 3.0, 6.0]), "y", "regression")
    assert regression["mae"] == 0.5 and regression["rmse"] == 1.0
    with pytest.raises(ConfigError, match="unknown regression metric 'f1'; expected one of rmse, mae, r2"):
        check_gate_metric(GateConfig(metric="f1"), "regression")
