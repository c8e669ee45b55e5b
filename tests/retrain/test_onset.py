"""Retrains of an episode train on data from after its change: the onset found in the labelled
rows' errors, the wait for labelled rows after it, and a training window that starts there."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, RetrainConfig, Settings
from monitor.records import LabelRecord, PredictionRecord, Service
from monitor.store import Store
from retrain.data import build_training_data
from retrain.onset import change_point
from retrain.tasks import AlertTrigger
from tests.retrain.scenario import register

DECAY = AlertRuleConfig.model_validate(
    {"name": "accuracy-decay", "kind": "quality_decay", "service": "credit", "metric": "accuracy", "threshold": 0.05}
)
WINDOW = 600.0


def _errors(rates: list[tuple[int, float]], seed: int = 7) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(e) for n, rate in rates for e in rng.random(n) < rate]


def test_the_change_point_is_where_the_error_rate_rose() -> None:
    found = change_point(_errors([(600, 0.1), (400, 0.5)]))
    assert found is not None and abs(found - 600) <= 25


@pytest.mark.parametrize("rates", [[(1000, 0.3)], [(600, 0.5), (400, 0.1)], [(20, 0.0), (20, 1.0)]])
def test_no_change_point_without_a_significant_rise(rates: list[tuple[int, float]]) -> None:
    """Steady errors, errors that fell (the model got better), too few rows: no onset."""
    assert change_point(_errors(rates)) is None


def _log(
    store: Store, service: Service, start: float, end: float, rate: float, n: int, *, seed: int, version: str = "1"
) -> None:
    """``n`` predictions of model ``version`` between ``start`` and ``end`` with labels, wrong at ``rate``."""
    rng = np.random.default_rng(seed)
    records, labels = [], []
    for ts, wrong in zip(np.linspace(start, end, n, endpoint=False), rng.random(n) < rate, strict=True):
        rid = uuid.uuid4().hex
        records.append(
            PredictionRecord(rid, float(ts), {"x1": 0.0, "x2": 0.0, "color": "red"}, 1, model_version=version)
        )
        labels.append(LabelRecord(rid, 0 if wrong else 1, float(ts)))
    store.add_predictions(service, records)
    store.add_labels(service, labels)


class Decaying:
    """A service whose errors jump at ``onset``, watched by a real alert engine and trigger."""

    def __init__(self, store: Store, *, onset_age: float = 0.5, history: bool = True, **policy: object) -> None:
        self.store = store
        self.service = register(store)
        self.service = store.upsert_service(
            "credit", task="classification", model_name="credit", target="label",
            features=self.service.features, config={"window": WINDOW},
        )  # fmt: skip
        rules = {"trigger": "on_alert", "cooldown": 0, "auto_promote": True, **policy}
        self.settings = Settings(
            alerts=(DECAY,), retrain=(RetrainConfig.model_validate({"service": "credit", **rules}),)
        )
        self.engine = AlertEngine(store, self.settings)
        self.trigger = AlertTrigger(store, self.settings)
        self.now = time.time() - 3 * WINDOW
        self.onset = self.now - onset_age * WINDOW  # 600 rows a window
        if history:
            _log(store, self.service, self.now - 2 * WINDOW, self.onset, 0.1, round(1200 - 600 * onset_age), seed=1)
        _log(store, self.service, self.onset, self.now, 0.45, round(600 * onset_age), seed=2)

    def alert_fires(self) -> None:
        """A check of the last window saw the decay: the rule fires now."""
        summary = CheckSummary.decode({"rows": 600, "decay": {"accuracy": {"absolute": 0.2, "relative": 0.22}}})
        self.store.add_check(
            self.service, window_start=self.now - WINDOW, window_end=self.now, model_version="1",
            status="ok", trigger="schedule", summary=summary, results={"features": []},
        )  # fmt: skip
        self.engine.tick(self.now)


def test_an_episode_retrain_waits_for_labelled_rows_after_the_onset_and_trains_from_there(store: Store) -> None:
    loop = Decaying(store, min_labelled_rows=500)
    loop.alert_fires()
    assert loop.trigger.consider("credit", loop.now + 1) is None  # 300 labelled rows since the change
    later = loop.now + WINDOW
    _log(store, loop.service, loop.now, later, 0.45, 300, seed=3)
    job = loop.trigger.consider("credit", later)
    assert job is not None
    assert abs(job.params["since"] - loop.onset) <= 20, "the onset is where the errors rose, not the alert's start"
    data = build_training_data(store, loop.service, loop.settings.retrain[0], later, since=job.params["since"])
    held_and_trained = data.window.production_rows + data.window.holdout_rows
    assert 560 <= held_and_trained <= 620  # the 600 rows after the change, none of the 900 before
    assert data.window.start == job.params["since"]


def test_without_a_wait_the_retrain_starts_at_once_from_the_onset(store: Store) -> None:
    loop = Decaying(store, min_labelled_rows=0)
    loop.alert_fires()
    job = loop.trigger.consider("credit", loop.now + 1)
    assert job is not None and abs(job.params["since"] - loop.onset) <= 20


def test_a_change_nearly_two_windows_before_the_alert_is_found_with_windows_of_rows_before_it(store: Store) -> None:
    """A late detection: with the change 1.9 windows old, a two-window lookback held a tenth of
    a window from before it, too little for a significant statistic."""
    loop = Decaying(store, onset_age=1.9, history=False, min_labelled_rows=0)
    _log(store, loop.service, loop.now - 4 * WINDOW, loop.onset, 0.1, 1260, seed=4)
    loop.alert_fires()
    job = loop.trigger.consider("credit", loop.now + 1)
    assert job is not None and abs(job.params["since"] - loop.onset) <= 30


def test_errors_of_the_version_before_a_promotion_do_not_hide_the_change(store: Store) -> None:
    """Version 0 was failing before version 1 replaced it: its errors lie in the lookback too,
    and on all rows together the rise at the onset is no longer significant."""
    loop = Decaying(store, onset_age=0.5, history=False, min_labelled_rows=0)
    promoted = loop.now - 1.5 * WINDOW
    _log(store, loop.service, loop.now - 4 * WINDOW, promoted, 0.6, 1500, seed=5, version="0")
    _log(store, loop.service, promoted, loop.onset, 0.1, 600, seed=6)
    loop.alert_fires()
    job = loop.trigger.consider("credit", loop.now + 1)
    assert job is not None and abs(job.params["since"] - loop.onset) <= 30


def test_labels_that_come_later_than_the_data_window_are_still_trained_on(store: Store) -> None:
    """A data window of half a window, labels a window late: the labelled rows after the onset
    all lie before the data window, and an episode's retrain trains on them from the onset."""
    loop = Decaying(store, min_labelled_rows=200, data_window=WINDOW / 2)
    loop.alert_fires()
    later = loop.now + WINDOW
    unlabelled = [
        PredictionRecord(uuid.uuid4().hex, float(ts), {"x1": 0.0, "x2": 0.0, "color": "red"}, 1, model_version="1")
        for ts in np.linspace(loop.now, later, 600, endpoint=False)
    ]
    store.add_predictions(loop.service, unlabelled)  # their labels have not come yet
    job = loop.trigger.consider("credit", later)
    assert job is not None
    data = build_training_data(store, loop.service, loop.settings.retrain[0], later, since=job.params["since"])
    assert data.window.start == job.params["since"] < later - loop.settings.retrain[0].data_window
    assert 270 <= data.window.production_rows + data.window.holdout_rows <= 310  # the 300 labelled after the onset


def test_a_manual_retrain_still_trains_on_the_whole_data_window(store: Store) -> None:
    loop = Decaying(store)
    data = build_training_data(store, loop.service, loop.settings.retrain[0], loop.now + 1)
    assert data.window.production_rows + data.window.holdout_rows == 1200
