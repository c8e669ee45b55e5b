"""The scenario suite's generators do what their docstrings say (fixed seeds, no processes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.scenarios.catalog import STABLE, named
from benchmarks.scenarios.generators import Population, Seasonal
from monitor.demo.data import FEATURES, TARGET, CreditData

N = 20_000
BEFORE, AFTER = STABLE - 1, STABLE + 4
NAMES = [name for name, _ in FEATURES]


def _draw(name: str, t: float, seed: int = 11) -> pd.DataFrame:
    return named([name])[0].population(5).sample(N, t, seed=seed)


def test_a_sudden_concept_change_keeps_every_feature_and_the_default_rate_but_moves_who_defaults() -> None:
    before, after = _draw("concept_sudden", BEFORE), _draw("concept_sudden", AFTER)
    pd.testing.assert_frame_equal(before[NAMES], after[NAMES])  # the same applicants, drawn alike
    assert abs(after[TARGET].mean() - before[TARGET].mean()) < 0.03  # keep_rate: as many defaults
    assert (after[TARGET] != before[TARGET]).mean() > 0.2  # but other people default


def test_a_covariate_shift_moves_the_features_while_labels_keep_the_training_rule() -> None:
    before, after = _draw("covariate_only", BEFORE), _draw("covariate_only", AFTER)
    assert after["income"].median() < 0.75 * before["income"].median()
    assert "online" in set(after["region"]) and "online" not in set(before["region"])
    trained_rule = CreditData.default_probability(after, 0.0)
    drifted_rule = CreditData.default_probability(after, 1.0)
    assert abs(after[TARGET].mean() - trained_rule.mean()) < 0.01  # calibrated to the training concept
    assert _brier(after[TARGET], trained_rule) < _brier(after[TARGET], drifted_rule) - 0.02


def test_the_ramp_moves_covariates_and_concept_together_over_two_windows() -> None:
    population = named(["ramp_concept"])[0].population(0)
    assert [population.covariate(t) for t in (STABLE - 0.5, STABLE + 1, STABLE + 2, STABLE + 5)] == [0, 0.5, 1, 1]
    assert [population.concept(t) for t in (STABLE - 0.5, STABLE + 1, STABLE + 2)] == [0, 0.5, 1]


def test_the_season_recurs_on_the_covariates_and_never_touches_the_concept() -> None:
    season = Seasonal(STABLE, 4.0)
    assert [round(season(STABLE + dt), 6) for dt in (-1, 0, 2, 4, 6, 8)] == [0, 0, 1, 0, 1, 0]
    high, low = _draw("seasonal", STABLE + 2), _draw("seasonal", STABLE + 4)
    assert high["income"].median() < 0.75 * low["income"].median()
    assert named(["seasonal"])[0].population(0).concept(STABLE + 2) == 0.0


def test_labels_come_two_windows_late_in_the_delayed_labels_scenario_only() -> None:
    delays = {s.name: s.label_delay for s in named([]) if not s.not_run}
    assert delays.pop("delayed_labels") == 2.0
    assert set(delays.values()) == {0.25}  # the demo's quarter of a window


def test_the_worse_challenger_scenario_sends_the_training_population_throughout() -> None:
    pd.testing.assert_frame_equal(_draw("worse_challenger", BEFORE), _draw("worse_challenger", AFTER))
    assert named(["worse_challenger"])[0].challenger_params == {
        "estimator": "decision_tree",
        "estimator_params": {"max_depth": 1},
    }


def test_the_canary_scenarios_start_a_faulty_canary_on_an_unchanging_population() -> None:
    for name, kind in (("canary_errors", "errors"), ("canary_slow", "slow")):
        scenario = named([name])[0]
        assert (scenario.canary, scenario.not_run, scenario.concept_changes) == (kind, None, False)
        pd.testing.assert_frame_equal(_draw(name, BEFORE), _draw(name, AFTER))


def test_a_canary_run_is_judged_on_how_fast_it_was_rolled_back_and_what_clients_saw() -> None:
    import dataclasses

    from benchmarks.scenarios.run import Outcome, _canary_figures, _judged

    hour, started = 15.0, 1000.0
    rows = pd.DataFrame({"t": np.linspace(0, 6, 600), "version": ["1"] * 550 + ["2"] * 50})
    stage = {"stage": "canary", "version": "2", "status": "rolled_back", "started_at": started + 4 * hour}
    quick = _canary_figures([{**stage, "ended_at": started + 4.5 * hour}], rows, started, hour)
    assert quick["canary_ended_after"] == pytest.approx(0.5) and quick["canary_status"] == "rolled_back"
    assert quick["canary_rows"] == 0  # its rows came after it ended
    scenario = named(["canary_errors"])[0]
    assert _judged(scenario, Outcome("canary_errors", **quick)).misses == ()
    slow = _canary_figures([{**stage, "ended_at": started + 5.5 * hour}], rows, started, hour)
    missed = _judged(scenario, dataclasses.replace(Outcome("canary_errors", **slow), failures=40))
    assert missed.misses == ("canary rolled back within 1 window", "client errors within the canary's share")


def test_the_seed_decides_the_rows() -> None:
    same = Population(seed=1).sample(50, 2.0, seed=3), Population(seed=1).sample(50, 2.0, seed=3)
    pd.testing.assert_frame_equal(*same)
    assert not Population(seed=2).sample(50, 2.0, seed=3).equals(same[0])


def test_an_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown scenario.*nope.*concept_sudden"):
        named(["nope"])


def _brier(labels: pd.Series, probability: np.ndarray) -> float:
    return float(np.mean((labels.to_numpy() - probability) ** 2))


def test_the_retraining_scenarios_run_at_120_unless_a_speed_is_asked_for_all() -> None:
    from benchmarks.scenarios.catalog import named
    from benchmarks.scenarios.run import RunOptions, speed_of

    speeds = {s.name: speed_of(s, RunOptions()) for s in named([])}
    assert {name for name, speed in speeds.items() if speed == 120.0} == {
        "concept_sudden",
        "ramp_concept",
        "delayed_labels",
    }
    assert set(speeds.values()) == {120.0, 240.0}
    assert {speed_of(s, RunOptions(speed=60.0)) for s in named([])} == {60.0}
