"""The training frame: reference plus labeled production rows, recency weights, caps, holdout."""

from __future__ import annotations

import time

import pytest

from monitor.config import RetrainConfig
from monitor.drift.reference import keep_reference
from monitor.store import Store
from retrain.data import WEIGHT, build_training_data
from retrain.errors import TrainerError
from tests.retrain.scenario import frame, register, send_traffic


def test_recent_labeled_traffic_is_weighted_by_age_and_the_newest_is_held_out(store: Store) -> None:
    service = register(store)
    keep_reference(store, service, frame(200, seed=1))
    now = time.time()
    send_traffic(store, service, frame(100, seed=2, drifted=True), version="1", now=now)
    policy = RetrainConfig(service="credit", recency_half_life=1500, max_production_rows=1000)
    data = build_training_data(store, service, policy, now)
    assert (data.window.reference_rows, data.window.production_rows, data.window.holdout_rows) == (200, 70, 30)
    assert data.window.holdout_source == "production" and data.features == ("x1", "x2", "color")
    production = data.train[WEIGHT].iloc[200:]
    assert production.max() <= 1.0 and production.min() == pytest.approx(0.5**2, abs=0.05)
    assert (data.train[WEIGHT].iloc[:200] == 1.0).all()
    assert data.holdout["x1"].mean() > 1.0  # the held-out rows are the drifted, most recent ones


def test_production_rows_are_capped_and_without_labels_the_reference_is_split(store: Store) -> None:
    service = register(store)
    keep_reference(store, service, frame(100, seed=1))
    data = build_training_data(store, service, RetrainConfig(service="credit", max_production_rows=0), time.time())
    assert (data.window.production_rows, data.window.holdout_rows, data.window.holdout_source) == (0, 30, "reference")
    assert len(data.train) == 70


def test_a_service_without_target_or_data_cannot_be_retrained(store: Store) -> None:
    bare = store.upsert_service("bare", task="classification")
    with pytest.raises(TrainerError, match="has no target"):
        build_training_data(store, bare, RetrainConfig(service="bare"), time.time())
    empty = register(store, "empty")
    with pytest.raises(TrainerError, match="too little labeled data"):
        build_training_data(store, empty, RetrainConfig(service="empty"), time.time())
