"""Attribution drift: the permutation importance of the window's model version on the reference
and on the window's labelled rows, the model loaded from a real (SQLite) MLflow registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.check_summary import AttributionSummary, CheckSummary
from monitor.config import AttributionConfig
from monitor.drift.attribution import MlflowModels, attribution_drift, importance_shares
from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

START = 1_700_000_000.0
HOUR = 3600.0
FEATURES = (Feature("x1"), Feature("x2"), Feature("noise"))
ON = {"attribution": {"enabled": True, "max_rows": 2000, "repeats": 5}}


def _population(rows: int, seed: int, *, concept: str = "trained") -> pd.DataFrame:
    """``trained``: the label follows x1 mostly and x2 a little; ``flipped``: x2 alone."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name.name: rng.normal(0, 1, rows) for name in FEATURES})
    score = frame["x1"] + 0.5 * frame["x2"] if concept == "trained" else frame["x2"]
    frame["target"] = (score + rng.normal(0, 0.3, rows) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    """Version 1 of model ``credit``: a logistic regression fitted on the trained concept."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    from retrain.registry import make_client

    work = tmp_path_factory.mktemp("attribution")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    train = _population(4000, seed=0)
    model = LogisticRegression().fit(train[["x1", "x2", "noise"]], train["target"])
    mlflow.sklearn.save_model(model, str(work / "v1"), serialization_format="cloudpickle")
    client = make_client(uri)
    client.create_registered_model("credit")
    client.create_model_version("credit", str(work / "v1"))
    return uri, model


def _service(store: Store, **config: object) -> Service:
    service = store.upsert_service("credit", task="classification", target="target", features=FEATURES, config=config)
    keep_reference(store, service, _population(3000, seed=1), source="training data")
    return store.get_service("credit")


def _window(
    store: Store, service: Service, frame: pd.DataFrame, model: object, version: str = "1", prefix: str = "r"
) -> None:
    said = model.predict(frame[["x1", "x2", "noise"]])  # type: ignore[attr-defined]
    step = HOUR / len(frame)
    rows = frame[["x1", "x2", "noise"]].to_dict(orient="records")
    store.add_predictions(
        service,
        [
            PredictionRecord(f"{prefix}{i}", START + i * step, row, int(p), model_version=version)
            for i, (row, p) in enumerate(zip(rows, said, strict=True))
        ],
    )
    store.add_labels(
        service, [LabelRecord(f"{prefix}{i}", int(y), START + HOUR) for i, y in enumerate(frame["target"])]
    )


def _attribution(store: Store, service: Service, uri: str) -> AttributionSummary:
    record = CheckRunner(store, models=MlflowModels(uri, store)).run(service, START, START + HOUR)
    assert record.status == "ok", record.error
    assert record.summary.attribution is not None
    return record.summary.attribution


def test_when_the_concept_moves_to_another_feature_its_share_rises_and_attribution_drifts(
    sqlite_store: Store, registry: tuple[str, object]
) -> None:
    uri, model = registry
    service = _service(sqlite_store, **ON)
    _window(sqlite_store, service, _population(2000, seed=2, concept="flipped"), model)
    found = _attribution(sqlite_store, service, uri)
    assert found.drifted and found.skipped is None
    assert found.top_reference[0] == "x1" and found.top_current[0] == "x2"
    assert found.max_shift_feature in {"x1", "x2"} and found.max_shift > 0.3
    shares = {f.name: f for f in found.features}
    assert shares["x2"].current > shares["x2"].reference + 0.3
    assert shares["noise"].reference < 0.05 and shares["noise"].current < 0.05
    assert found.reference_rows == 2000 and found.current_rows == 2000


def test_on_the_population_it_was_trained_on_attribution_holds(
    sqlite_store: Store, registry: tuple[str, object]
) -> None:
    uri, model = registry
    service = _service(sqlite_store, **ON)
    _window(sqlite_store, service, _population(2000, seed=3), model)
    found = _attribution(sqlite_store, service, uri)
    assert not found.drifted and found.max_shift < 0.1
    assert found.top_reference[:2] == found.top_current[:2] == ("x1", "x2")
    assert found.rank_correlation is not None and found.rank_correlation > 0.9


def test_attribution_travels_through_the_stored_summary(sqlite_store: Store, registry: tuple[str, object]) -> None:
    uri, model = registry
    service = _service(sqlite_store, **ON)
    _window(sqlite_store, service, _population(500, seed=4, concept="flipped"), model)
    record = CheckRunner(sqlite_store, models=MlflowModels(uri, sqlite_store)).run(service, START, START + HOUR)
    stored = sqlite_store.get_check(record.id).summary
    assert stored.attribution == record.summary.attribution
    assert CheckSummary.decode(stored.encode()).attribution == stored.attribution
    assert CheckSummary.decode({"rows": 3}).attribution is None  # summaries from before it


def test_off_by_default_and_skipped_with_a_reason_when_it_cannot_run(
    sqlite_store: Store, registry: tuple[str, object]
) -> None:
    uri, model = registry
    plain = _service(sqlite_store)
    _window(sqlite_store, plain, _population(300, seed=5), model)
    assert CheckRunner(sqlite_store).run(plain, START, START + HOUR).summary.attribution is None

    service = sqlite_store.upsert_service(
        "credit", task="classification", target="target", features=FEATURES, config=ON
    )
    without_registry = CheckRunner(sqlite_store).run(service, START, START + HOUR).summary.attribution
    assert without_registry is not None and "no model registry" in (without_registry.skipped or "")
    strays = _population(400, seed=7)
    _window(sqlite_store, service, strays, model, version="9", prefix="v9-")  # a version the registry lacks
    missing = CheckRunner(sqlite_store, models=MlflowModels(uri, sqlite_store)).run(service, START, START + HOUR)
    assert missing.status == "ok" and missing.summary.attribution is not None
    assert "could not score version 9" in (missing.summary.attribution.skipped or "")


def test_shares_add_up_and_a_feature_the_model_ignores_gets_none() -> None:
    from sklearn.linear_model import LogisticRegression

    data = _population(1500, seed=6)
    model = LogisticRegression().fit(data[["x1", "x2"]], data["target"])
    frame = data[["x1", "x2", "noise"]]
    shares = importance_shares(
        lambda f: model.predict(f[["x1", "x2"]]), frame, data["target"], "classification", AttributionConfig()
    )
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["noise"] == 0.0 and shares["x1"] > shares["x2"] > 0


def test_the_verdict_is_the_largest_move_of_one_features_share() -> None:
    found = attribution_drift({"a": 0.6, "b": 0.3, "c": 0.1}, {"a": 0.45, "b": 0.45, "c": 0.1}, threshold=0.1)
    assert found.drifted and found.max_shift == pytest.approx(0.15) and found.max_shift_feature in {"a", "b"}
    held = attribution_drift({"a": 0.6, "b": 0.3, "c": 0.1}, {"a": 0.55, "b": 0.33, "c": 0.12}, threshold=0.1)
    assert not held.drifted and held.rank_correlation == pytest.approx(1.0)


def test_a_check_run_as_the_api_and_worker_do_loads_the_model_from_the_configured_registry(
    sqlite_store: Store, registry: tuple[str, object]
) -> None:
    from monitor.config import Settings
    from monitor.drift.actions import run_check

    uri, model = registry
    service = _service(sqlite_store, **ON)
    _window(sqlite_store, service, _population(600, seed=8, concept="flipped"), model)
    settings = Settings(mlflow_tracking_uri=uri)
    check, _ = run_check(
        sqlite_store, settings, "credit", actor="test", trigger="manual", start=START, end=START + HOUR
    )
    assert check.summary.attribution is not None and check.summary.attribution.skipped is None
    assert check.summary.attribution.top_current[0] == "x2"
