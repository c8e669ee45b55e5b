"""The metric registry: the gate, quality decay and the dashboard agree on which way is better."""

from __future__ import annotations

import pytest

from dashboard.views import CheckHeadline
from monitor.check_summary import CheckSummary
from monitor.config import GateConfig
from monitor.drift.quality import decay
from monitor.quality_metrics import METRICS, display_name, metric, of_task
from monitor.records import CheckRecord
from retrain.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS, decide

LOWER_IS_BETTER = {"mae", "rmse", "mape", "log_loss"}
"""Written out here rather than read from the registry, so that the test checks it."""


def _worse(name: str, value: float) -> float:
    return value + 0.1 if name in LOWER_IS_BETTER else value - 0.1


def _better(name: str, value: float) -> float:
    return value - 0.1 if name in LOWER_IS_BETTER else value + 0.1


def _dashboard_decay(name: str, baseline: float, current: float) -> float | None:
    quality, base = {name: current}, {name: baseline}
    summary = CheckSummary(quality=quality, baseline=base, decay=decay(base, quality))
    record = CheckRecord(1, 1, 0.0, 3600.0, 3600.0, "1", "ok", "schedule", summary, {"features": []})
    return CheckHeadline.of(record).decay


def test_the_gate_promotes_the_challenger_with_the_lower_mape() -> None:
    gate = GateConfig(metric="mape")
    assert decide(gate, {"mape": 0.10}, {"mape": 0.20}).passed
    worse = decide(gate, {"mape": 0.30}, {"mape": 0.20})
    assert not worse.passed and worse.gain == pytest.approx(-0.1)


def test_a_log_loss_ceiling_refuses_a_higher_log_loss() -> None:
    gate = GateConfig(metric="accuracy", floors={"log_loss": 0.5})
    refused = decide(gate, {"accuracy": 0.9, "log_loss": 0.6}, None)
    assert not refused.passed and "log_loss 0.6000 above ceiling 0.5" in refused.reason


@pytest.mark.parametrize("name", sorted(METRICS))
def test_gate_decay_and_dashboard_agree_which_way_is_better(name: str) -> None:
    baseline = 0.5
    assert (name in LOWER_IS_BETTER) is not metric(name).higher_is_better
    assert decide(GateConfig(metric=name), {name: _better(name, baseline)}, {name: baseline}).passed
    assert not decide(GateConfig(metric=name), {name: _worse(name, baseline)}, {name: baseline}).passed
    found = decay({name: baseline}, {name: _worse(name, baseline)})
    assert found is not None and found[name].absolute == pytest.approx(0.1)
    assert found[name].relative == pytest.approx(0.2)
    assert _dashboard_decay(name, baseline, _worse(name, baseline)) == pytest.approx(0.2)
    assert _dashboard_decay(name, baseline, _better(name, baseline)) == pytest.approx(-0.2)


def test_every_metric_the_gate_scores_is_registered_for_its_task() -> None:
    assert set(CLASSIFICATION_METRICS) <= set(of_task("classification"))
    assert set(REGRESSION_METRICS) <= set(of_task("regression"))
    assert set(of_task("classification")).isdisjoint(of_task("regression"))


def test_an_unknown_metric_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown quality metric 'auc'; expected one of accuracy, precision"):
        metric("auc")
    assert display_name("roc_auc") == "ROC AUC" and display_name("custom") == "custom"
