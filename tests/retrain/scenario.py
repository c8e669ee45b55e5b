"""Synthetic traffic for the retrain tests: a reference concept and a drifted, relabeled one."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from monitor.records import Feature, LabelRecord, PredictionRecord, Service
from monitor.store import Store

FEATURES = (Feature("x1"), Feature("x2"), Feature("color", "categorical"))
COLORS = ("red", "green", "blue")


def frame(n: int, *, seed: int, drifted: bool = False) -> pd.DataFrame:
    """Features and label; drifted data has shifted inputs and a different labeling rule."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(2.0 if drifted else 0.0, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    color = rng.choice(COLORS, n)
    if drifted:
        label = ((x1 - 2.0) * (color == "red") - x2 > 0).astype(int)
    else:
        label = (x1 + x2 + 0.5 * (color == "blue") > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": label})


def register(store: Store, name: str = "credit", model: str | None = None) -> Service:
    """A classification service with the scenario's features and target."""
    return store.upsert_service(
        name, task="classification", model_name=model or name, target="label", features=FEATURES
    )


def send_traffic(store: Store, service: Service, data: pd.DataFrame, *, version: str, now: float | None = None) -> None:
    """Log ``data`` as predictions of ``version`` in the last hour, with their labels."""
    now = time.time() if now is None else now
    ts = np.linspace(now - 3000, now - 1, len(data))
    records, labels = [], []
    for i, row in enumerate(data.itertuples(index=False)):
        rid = uuid.uuid4().hex
        features: dict[str, Any] = {"x1": float(row.x1), "x2": float(row.x2), "color": str(row.color)}
        records.append(PredictionRecord(rid, float(ts[i]), features, prediction=0, model_version=version))
        labels.append(LabelRecord(rid, int(row.label), float(ts[i])))
    store.add_predictions(service, records)
    store.add_labels(service, labels)
