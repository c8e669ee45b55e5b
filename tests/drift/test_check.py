"""Checks on seeded windows with documented shifts: what drifts, what does not, and quality decay."""

from __future__ import annotations

import pytest

from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.store import Store
from tests.drift.conftest import WINDOW, WINDOW_START, add_labels, ingest, make_scenario, register

END = WINDOW_START + WINDOW


def _verdicts(record) -> dict[str, bool]:
    return {f["name"]: f["drifted"] for f in record.results["features"]}


def test_mean_shift_variance_change_and_new_category_drift_while_stable_features_do_not(store: Store) -> None:
    service = register(store)
    keep_reference(store, service, make_scenario(5000, seed=1).frame, source="test")
    # documented shifts: mean +0.5 sd, standard deviation x2, 30% of cities become a new one
    ingest(store, service, make_scenario(4000, seed=2, mean_shift=0.5, variance=2.0, new_city_share=0.3))
    record = CheckRunner(store).run(service, WINDOW_START, END, trigger="manual")
    assert record.status == "ok", record.error
    assert _verdicts(record) == {
        "stable": False,
        "mean_shift": True,
        "variance": True,
        "city": True,
        "segment": False,
    }
    summary = record.summary.encode()
    assert summary["drifted_features"] == ["mean_shift", "variance", "city"]
    assert summary["drift_share"] == pytest.approx(3 / 5)
    assert summary["dataset_drift"] is True
    assert summary["data_quality"]["new_categories"] == {"city": ["oslo"]}
    assert (
        summary["data_quality"]["out_of_range_share"]["variance"]
        > summary["data_quality"]["out_of_range_share"]["stable"]
    )
    assert summary["prediction_drift"]["drifted"] is False
    methods = {f["name"]: f["method"] for f in record.results["features"]}
    assert methods == {
        "stable": "wasserstein",
        "mean_shift": "wasserstein",
        "variance": "wasserstein",
        "city": "jensenshannon",
        "segment": "jensenshannon",
    }


def test_unshifted_window_has_no_drift_and_no_quality_before_labels(sqlite_store: Store) -> None:
    service = register(sqlite_store)
    keep_reference(sqlite_store, service, make_scenario(5000, seed=1).frame)
    ingest(sqlite_store, service, make_scenario(3000, seed=3))
    summary = CheckRunner(sqlite_store).run(service, WINDOW_START, END).summary.encode()
    assert summary["drifted_features"] == []
    assert summary["dataset_drift"] is False
    assert summary["label_coverage"] == 0.0
    assert summary["quality"] is None and summary["decay"] is None and summary["target_drift"] is None
    assert summary["estimated_quality"]["accuracy"] == pytest.approx(summary["baseline"]["accuracy"], abs=0.03)


def test_concept_drift_keeps_inputs_but_late_labels_reveal_quality_decay(sqlite_store: Store) -> None:
    service = register(sqlite_store)
    keep_reference(sqlite_store, service, make_scenario(5000, seed=1).frame)
    scenario = make_scenario(4000, seed=4, concept_flip=0.3)  # same inputs, 30% of labels flipped
    ingest(sqlite_store, service, scenario)
    runner = CheckRunner(sqlite_store)
    before = runner.run(service, WINDOW_START, END, trigger="schedule").summary.encode()
    assert before["drifted_features"] == [] and before["quality"] is None
    add_labels(sqlite_store, service, scenario, share=0.5)
    after = runner.run(service, WINDOW_START, END, trigger="schedule").summary.encode()
    assert after["drifted_features"] == []
    assert after["label_coverage"] == pytest.approx(0.5, abs=0.05)
    drop = after["decay"]["accuracy"]
    # flipping 30% of the labels costs 0.3 * (2 * accuracy - 1) of accuracy
    assert drop["absolute"] == pytest.approx(0.3 * (2 * after["baseline"]["accuracy"] - 1), abs=0.04)
    assert drop["relative"] == pytest.approx(drop["absolute"] / after["baseline"]["accuracy"])
    assert after["decay"]["log_loss"]["absolute"] > 0  # error metrics: positive is worse too
    assert after["target_drift"]["method"] == "jensenshannon"
    assert after["estimate_error"]["accuracy"] > 0.08  # the label-free estimate cannot see concept drift


def test_label_free_estimate_tracks_realized_accuracy_on_calibrated_data(sqlite_store: Store) -> None:
    service = register(sqlite_store)
    keep_reference(sqlite_store, service, make_scenario(5000, seed=1).frame)
    # covariate shift: the model meets easier rows (|stable| larger), so its accuracy rises
    scenario = make_scenario(6000, seed=5, stable_scale=1.8)
    ingest(sqlite_store, service, scenario)
    add_labels(sqlite_store, service, scenario)
    summary = CheckRunner(sqlite_store).run(service, WINDOW_START, END).summary.encode()
    assert summary["quality"]["accuracy"] > summary["baseline"]["accuracy"] + 0.05
    assert summary["estimate_error"]["accuracy"] <= 0.03
    assert summary["estimate_error"]["f1"] <= 0.03


def test_empty_window_is_no_data_and_missing_reference_is_an_error_with_quality(sqlite_store: Store) -> None:
    service = register(sqlite_store)
    runner = CheckRunner(sqlite_store)
    empty = runner.run(service, WINDOW_START, END)
    assert (
        empty.status == "no_data"
        and empty.summary.encode()["rows"] == 0
        and empty.summary.encode()["drifted_features"] == []
    )
    scenario = make_scenario(500, seed=7)
    ingest(sqlite_store, service, scenario)
    add_labels(sqlite_store, service, scenario)
    record = runner.run(service, WINDOW_START, END)
    assert record.status == "error"
    assert "no reference data" in (record.error or "")
    assert record.summary.encode()["quality"]["accuracy"] == pytest.approx(
        (scenario.frame["target"] == scenario.frame["prediction"]).mean()
    )


def test_per_feature_method_and_threshold_override_evidently_defaults(sqlite_store: Store) -> None:
    from monitor.records import Feature

    service = register(sqlite_store)
    features = (Feature("stable", drift_method="ks", drift_threshold=0.2), Feature("mean_shift", drift_threshold=5.0))
    service = sqlite_store.upsert_service("credit", task="classification", target="target", features=features)
    keep_reference(sqlite_store, service, make_scenario(3000, seed=1).frame)
    ingest(sqlite_store, service, make_scenario(3000, seed=8, mean_shift=0.5))
    results = {f["name"]: f for f in CheckRunner(sqlite_store).run(service, WINDOW_START, END).results["features"]}
    assert (results["stable"]["method"], results["stable"]["threshold"]) == ("ks", 0.2)
    assert (results["mean_shift"]["method"], results["mean_shift"]["drifted"]) == ("wasserstein", False)


def test_first_well_labelled_window_becomes_the_baseline_when_reference_has_no_predictions(
    sqlite_store: Store,
) -> None:
    service = register(sqlite_store)
    inputs_only = make_scenario(3000, seed=1).frame.drop(columns=["prediction", "proba_0", "proba_1"])
    keep_reference(sqlite_store, service, inputs_only)
    good = make_scenario(1000, seed=9)
    ingest(sqlite_store, service, good)
    add_labels(sqlite_store, service, good)
    runner = CheckRunner(sqlite_store)
    first = runner.run(service, WINDOW_START, END).summary.encode()
    assert first["baseline"] == first["quality"]
    assert first["decay"]["accuracy"]["absolute"] == 0
    assert sqlite_store.reference_stats(service)["baselines"] == {"1": first["quality"]}
    worse = make_scenario(1000, seed=10, concept_flip=0.4)
    ingest(sqlite_store, service, worse, start=END, prefix="w")
    add_labels(sqlite_store, service, worse, prefix="w")
    later = CheckRunner(sqlite_store).run(service, END, END + WINDOW).summary.encode()  # a fresh runner reads it back
    assert later["baseline"] == first["quality"]
    assert later["decay"]["accuracy"]["absolute"] > 0.1


def test_unknown_drift_method_makes_an_error_check_that_lists_the_valid_ones(sqlite_store: Store) -> None:
    from monitor.records import Feature

    service = sqlite_store.upsert_service(
        "credit", task="classification", features=(Feature("stable", drift_method="magic"),)
    )
    keep_reference(sqlite_store, service, make_scenario(500, seed=1).frame)
    ingest(sqlite_store, service, make_scenario(300, seed=2))
    record = CheckRunner(sqlite_store).run(service, WINDOW_START, END)
    assert record.status == "error"
    assert "features.stable.drift_method: 'magic' is not a stattest" in (record.error or "")
    assert "wasserstein" in (record.error or "") and record.summary.encode()["rows"] == 300


def test_a_service_drift_share_sets_when_a_window_has_dataset_drift(sqlite_store: Store) -> None:
    reference = make_scenario(5000, seed=1).frame
    window = make_scenario(3000, seed=2, mean_shift=0.5)  # one feature of five drifts
    found = {}
    for name, config in (("default", {}), ("strict", {"drift_share": 0.2})):
        service = register(sqlite_store, name, **config)
        keep_reference(sqlite_store, service, reference)
        ingest(sqlite_store, service, window, prefix=name)
        found[name] = CheckRunner(sqlite_store).run(service, WINDOW_START, END).summary.encode()
    assert found["default"]["drift_share"] == found["strict"]["drift_share"] == pytest.approx(0.2)
    assert found["default"]["dataset_drift"] is False  # below the default share of 0.5
    assert found["strict"]["dataset_drift"] is True
