"""Seeded data with documented shifts, and helpers to put it in a store as a window."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

FEATURES = (
    Feature("stable"),
    Feature("mean_shift"),
    Feature("variance"),
    Feature("city", "categorical"),
    Feature("segment", "categorical"),
)
WINDOW_START = 1_700_000_000.0  # an hour boundary
WINDOW = 3600.0


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """A store on SQLite only: for check semantics, which do not depend on the backend
    (the store methods themselves run on both through the ``store`` fixture)."""
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


@dataclass(frozen=True)
class Scenario:
    """Inputs, labels, predictions and P(class 1) of one seeded data set."""

    frame: pd.DataFrame  # features + target + prediction + proba_0/proba_1

    @property
    def features(self) -> pd.DataFrame:
        return self.frame[[f.name for f in FEATURES]]


def make_scenario(
    rows: int,
    seed: int,
    *,
    mean_shift: float = 0.0,
    variance: float = 1.0,
    new_city_share: float = 0.0,
    concept_flip: float = 0.0,
    stable_scale: float = 1.0,
) -> Scenario:
    """A binary classifier's data. The true P(y=1) is sigmoid(1.5 * stable + 0.5 * segment_b);
    the model predicts with that same calibrated probability. ``concept_flip`` flips that share
    of the labels after the fact (inputs and predictions unchanged: concept drift);
    ``stable_scale`` widens the main input (covariate shift towards easier rows)."""
    rng = np.random.default_rng(seed)
    stable = rng.normal(0, stable_scale, rows)
    segment = rng.choice(["a", "b"], rows)
    cities = np.array(["paris", "lyon", "nice"])
    city = rng.choice(cities, rows, p=[0.5, 0.3, 0.2]).astype(object)
    if new_city_share:
        city[rng.random(rows) < new_city_share] = "oslo"
    p = 1 / (1 + np.exp(-(1.5 * stable + 0.5 * (segment == "b"))))
    label = (rng.random(rows) < p).astype(int)
    if concept_flip:
        flip = rng.random(rows) < concept_flip
        label[flip] = 1 - label[flip]
    frame = pd.DataFrame(
        {
            "stable": stable,
            "mean_shift": rng.normal(mean_shift, 1, rows),
            "variance": rng.normal(0, variance, rows),
            "city": city,
            "segment": segment,
            "target": label,
            "prediction": (p >= 0.5).astype(int),
            "proba_0": 1 - p,
            "proba_1": p,
        }
    )
    return Scenario(frame)


def register(store: Store, name: str = "credit", **config: object) -> Service:
    """A classification service with the scenario's features."""
    return store.upsert_service(name, task="classification", target="target", features=FEATURES, config=dict(config))


def ingest(
    store: Store,
    service: Service,
    scenario: Scenario,
    *,
    start: float = WINDOW_START,
    version: str = "1",
    prefix: str = "r",
) -> None:
    """Store the scenario's rows as predictions spread over one window (no labels yet)."""
    frame = scenario.frame
    step = WINDOW / len(frame)
    names = [f.name for f in FEATURES]
    records = [
        PredictionRecord(
            request_id=f"{prefix}{i}",
            ts=start + i * step,
            features=dict(zip(names, values, strict=True)),
            prediction=int(pred),
            probabilities={"0": float(1 - p1), "1": float(p1)},
            model_version=version,
        )
        for i, (*values, pred, p1) in enumerate(
            frame[[*names, "prediction", "proba_1"]].itertuples(index=False, name=None)
        )
    ]
    for i in range(0, len(records), 5000):
        store.add_predictions(service, records[i : i + 5000])


def add_labels(store: Store, service: Service, scenario: Scenario, share: float = 1.0, prefix: str = "r") -> None:
    """Late labels for the first ``share`` of the scenario's rows."""
    count = int(len(scenario.frame) * share)
    truth = scenario.frame["target"][:count]
    labels = [LabelRecord(f"{prefix}{i}", int(y), WINDOW_START + WINDOW * 2) for i, y in enumerate(truth)]
    store.add_labels(service, labels)


def ingest_frame(store: Store, service: Service, frame: pd.DataFrame, *, prefix: str = "f") -> None:
    """Store each row of ``frame`` (its columns are the features) as a prediction of 0 within one window."""
    step = WINDOW / len(frame)
    records = [
        PredictionRecord(request_id=f"{prefix}{i}", ts=WINDOW_START + i * step, features=row, prediction=0)
        for i, row in enumerate(frame.to_dict("records"))
    ]
    store.add_predictions(service, records)
