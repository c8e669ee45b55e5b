"""A retrained version is held to the quality the service must keep, not only to its own
holdout: real checks on a real store, with the uploaded reference and a version's own."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

from monitor.config import ServiceConfig
from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

FEATURES = (Feature("x1"),)


def _reference(n: int, accuracy: float, seed: int) -> pd.DataFrame:
    """Reference rows with labels and the model's predictions, right at ``accuracy``."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    right = np.arange(n) < int(accuracy * n)
    return pd.DataFrame({"x1": rng.normal(0, 1, n), "label": label, "prediction": np.where(right, label, 1 - label)})


def _window(store: Store, service: Service, version: str, accuracy: float, now: float, n: int = 1000) -> None:
    rng = np.random.default_rng(3)
    right = rng.random(n) < accuracy
    records, labels = [], []
    for i, ts in enumerate(np.linspace(now - 500, now - 1, n)):
        rid = uuid.uuid4().hex
        records.append(PredictionRecord(rid, float(ts), {"x1": float(rng.normal())}, 1, model_version=version))
        labels.append(LabelRecord(rid, 1 if right[i] else 0, float(ts)))
    store.add_predictions(service, records)
    store.add_labels(service, labels)


def _service(store: Store, **config: object) -> Service:
    return store.upsert_service(
        "credit", task="classification", model_name="credit", target="label", features=FEATURES, config=config
    )


def test_a_retrained_version_is_judged_against_the_services_first_baseline(store: Store) -> None:
    service = _service(store)
    keep_reference(store, service, _reference(2000, 0.9, seed=1))  # the uploaded one: 0.9
    keep_reference(store, service, _reference(2000, 0.7, seed=2), model_version="2")  # its own holdout: 0.7
    now = time.time()
    _window(store, service, "2", 0.7, now)
    check = CheckRunner(store).run(service, now - 600, now)
    summary = check.summary
    assert summary.quality is not None and summary.quality["accuracy"] == pytest.approx(0.7, abs=0.04)
    assert summary.target is not None and summary.target["accuracy"] == pytest.approx(0.9)
    assert summary.baseline is not None and summary.baseline["accuracy"] == pytest.approx(0.9)
    decay = summary.decay_of("accuracy")
    assert decay is not None and decay.absolute == pytest.approx(0.2, abs=0.04)


def test_without_an_uploaded_baseline_the_first_versions_own_baseline_is_the_target(store: Store) -> None:
    """As in the demo: the first model was trained by mlwatch, so every version has a reference of its own."""
    service = _service(store)
    keep_reference(store, service, _reference(2000, 0.9, seed=1), model_version="1")
    keep_reference(store, service, _reference(2000, 0.7, seed=2), model_version="2")
    now = time.time()
    _window(store, service, "2", 0.7, now)
    summary = CheckRunner(store).run(service, now - 600, now).summary
    assert summary.target is not None and summary.target["accuracy"] == pytest.approx(0.9)
    decay = summary.decay_of("accuracy")
    assert decay is not None and decay.absolute == pytest.approx(0.2, abs=0.04)


def test_the_uploaded_reference_keeps_its_own_baseline(store: Store) -> None:
    service = _service(store)
    keep_reference(store, service, _reference(2000, 0.9, seed=1))
    now = time.time()
    _window(store, service, "1", 0.88, now)
    summary = CheckRunner(store).run(service, now - 600, now).summary
    assert summary.target is None
    assert summary.baseline is not None and summary.baseline["accuracy"] == pytest.approx(0.9)


def test_a_configured_quality_target_raises_every_versions_bar_but_never_lowers_it(store: Store) -> None:
    service = _service(store, quality_target={"accuracy": 0.95, "roc_auc": 0.5})
    keep_reference(store, service, _reference(2000, 0.9, seed=1))
    now = time.time()
    _window(store, service, "1", 0.9, now)
    summary = CheckRunner(store).run(service, now - 600, now).summary
    assert summary.target == {"accuracy": 0.95, "roc_auc": 0.5}
    assert summary.baseline is not None and summary.baseline["accuracy"] == 0.95
    decay = summary.decay_of("accuracy")
    assert decay is not None and decay.absolute == pytest.approx(0.05, abs=0.03)


@pytest.mark.parametrize(
    ("target", "named"),
    [({"acuracy": 0.9}, "acuracy"), ({"rmse": 1.0}, "rmse"), ({"accuracy": float("nan")}, "quality_target")],
)
def test_a_quality_target_with_an_unknown_or_foreign_metric_is_refused_naming_it(
    target: dict[str, float], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        ServiceConfig(name="credit", task="classification", quality_target=target)
