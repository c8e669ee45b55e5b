"""Multivariate drift: a correlation that flips under unchanged marginals is found by both methods
and by no per-feature test; random halves of real data sets drift for neither."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from monitor.drift.check import CheckRunner
from monitor.drift.multivariate import Detector, null_auc_std, settings_of
from monitor.drift.reference import keep_reference
from monitor.errors import ValidationFailed
from monitor.records import Feature
from monitor.store import Store
from tests.drift.conftest import WINDOW, WINDOW_START, ingest_frame

BOTH = {"methods": ["pca", "classifier"], "max_rows": 2000}


def correlated(rows: int, correlation: float, seed: int) -> pd.DataFrame:
    """Two standard normal inputs with the given correlation (so the same marginals whatever it is),
    an independent one and a category."""
    rng = np.random.default_rng(seed)
    pair = rng.multivariate_normal([0, 0], [[1, correlation], [correlation, 1]], rows)
    channel = rng.choice(["web", "app", "shop"], rows, p=[0.5, 0.3, 0.2])
    return pd.DataFrame({"x": pair[:, 0], "y": pair[:, 1], "noise": rng.normal(size=rows), "channel": channel})


FEATURES = (Feature("x"), Feature("y"), Feature("noise"), Feature("channel", "categorical"))


def test_flipped_correlation_drifts_for_both_methods_and_for_no_single_feature(sqlite_store: Store) -> None:
    service = sqlite_store.upsert_service("joint", task="regression", features=FEATURES, config={"multivariate": BOTH})
    keep_reference(sqlite_store, service, correlated(3000, 0.9, seed=1))
    ingest_frame(sqlite_store, service, correlated(2000, -0.9, seed=2))
    summary = CheckRunner(sqlite_store).run(service, WINDOW_START, WINDOW_START + WINDOW).summary.encode()
    assert summary["drifted_features"] == [] and summary["dataset_drift"] is False
    joint = summary["multivariate"]
    assert joint["drifted"] is True and joint["skipped"] == {}
    pca, classifier = joint["methods"]["pca"], joint["methods"]["classifier"]
    assert pca["drifted"] and pca["score"] > pca["upper"]
    assert classifier["drifted"] and classifier["score"] > 0.8  # the trees see the sign of x * y
    assert (pca["current_rows"], classifier["reference_rows"], pca["features"]) == (2000, 2000, 4)


def test_same_correlation_does_not_drift(sqlite_store: Store) -> None:
    service = sqlite_store.upsert_service("joint", task="regression", features=FEATURES, config={"multivariate": BOTH})
    keep_reference(sqlite_store, service, correlated(3000, 0.9, seed=1))
    ingest_frame(sqlite_store, service, correlated(2000, 0.9, seed=3))
    joint = CheckRunner(sqlite_store).run(service, WINDOW_START, WINDOW_START + WINDOW).summary.encode()["multivariate"]
    assert joint["drifted"] is False
    assert joint["methods"]["pca"]["lower"] <= joint["methods"]["pca"]["score"] <= joint["methods"]["pca"]["upper"]


@pytest.mark.parametrize(("load", "seed"), [(load_breast_cancer, 0), (load_breast_cancer, 1), (load_diabetes, 2)])
def test_random_halves_of_a_real_data_set_drift_for_neither_method(load, seed: int) -> None:
    frame = load(as_frame=True).data
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    types = dict.fromkeys(frame.columns, "numerical")
    found = Detector(frame.iloc[order[:half]], types, settings_of({"multivariate": BOTH})).detect(
        frame.iloc[order[half:]]
    )
    assert [v.method for v in found.verdicts] == ["pca", "classifier"]
    assert not found.drifted, [v.verdict() for v in found.verdicts]


def test_classifier_bar_rises_above_the_configured_auc_on_small_samples() -> None:
    # 284 rows a side: chance alone gives an AUC spread of 0.024, so 0.55 would be 2 standard errors
    assert 0.5 + 3 * null_auc_std(284, 285) > 0.57
    assert 0.5 + 3 * null_auc_std(5000, 5000) < 0.55


def test_pca_is_the_default_and_can_be_switched_off(sqlite_store: Store) -> None:
    assert settings_of({}).methods == ("pca",)
    service = sqlite_store.upsert_service(
        "joint", task="regression", features=FEATURES, config={"multivariate": {"enabled": False}}
    )
    keep_reference(sqlite_store, service, correlated(500, 0.9, seed=1))
    ingest_frame(sqlite_store, service, correlated(300, -0.9, seed=2))
    assert (
        CheckRunner(sqlite_store).run(service, WINDOW_START, WINDOW_START + WINDOW).summary.encode()["multivariate"]
        is None
    )


def test_too_few_rows_or_features_say_why_instead_of_a_verdict() -> None:
    types = {"x": "numerical"}
    one = Detector(correlated(500, 0.9, seed=1), types, settings_of({"multivariate": BOTH}))
    found = one.detect(correlated(500, 0.9, seed=2))
    assert [v.method for v in found.verdicts] == ["classifier"]
    assert "at least 2 numerical or categorical features" in found.skipped["pca"]
    few = one.detect(correlated(20, 0.9, seed=2))
    assert few.verdicts == () and "the window has 20" in few.skipped["classifier"]


def test_more_features_than_max_features_skip_the_joint_methods_and_say_how_to_run_them() -> None:
    types = {"x": "numerical", "y": "numerical", "noise": "numerical", "channel": "categorical"}
    capped = settings_of({"multivariate": {**BOTH, "max_features": 3}})
    found = Detector(correlated(500, 0.9, seed=1), types, capped).detect(correlated(500, -0.9, seed=2))
    assert found.verdicts == ()
    assert all("4 features are more than multivariate.max_features (3)" in why for why in found.skipped.values())
    assert set(found.skipped) == {"pca", "classifier"}
    allowed = settings_of({"multivariate": {**BOTH, "max_features": 4}})
    joint = Detector(correlated(500, 0.9, seed=1), types, allowed).detect(correlated(500, -0.9, seed=2))
    assert {v.method for v in joint.verdicts} == {"pca", "classifier"} and all(v.drifted for v in joint.verdicts)


def test_unknown_method_names_the_valid_ones() -> None:
    with pytest.raises(ValidationFailed, match=r"'pca' or 'classifier'"):
        settings_of({"multivariate": {"methods": ["lstm"]}})
