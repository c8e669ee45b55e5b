"""The SDK against a real API server: decorator, context manager, explicit calls, filters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from monitor.sdk import DeliveryOptions, Tracker
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.2)


def tracker_for(api: RunningServer, service: str, tmp_path: Path, **kwargs: object) -> Tracker:
    return Tracker(
        service,
        url=api.url,
        token=api.token,
        spool_dir=tmp_path / "spool",
        options=FAST,
        flush_at_exit=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_decorator_context_manager_and_explicit_call_are_all_stored(api: RunningServer, tmp_path: Path) -> None:
    register(api, "three-ways", ["x", "y"])
    tracker = tracker_for(api, "three-ways", tmp_path, model_version="7")

    @tracker.track
    def predict(features: dict[str, float]) -> int:
        return int(features["x"] > features["y"])

    @tracker.track
    async def predict_async(features: dict[str, float]) -> int:
        return 1

    assert predict({"x": 2.0, "y": 1.0}) == 1
    assert asyncio.run(predict_async({"x": 0.5, "y": 0.1})) == 1
    with tracker.call({"x": 3.0, "y": 4.0}) as call:
        call.prediction = 0
        call.probabilities = [0.9, 0.1]
    explicit = tracker.log({"x": 1.5, "y": 1.5}, 1, latency_ms=2.5, request_id="explicit-1")
    assert tracker.flush(10)
    rows = {r.request_id: r for r in stored(api, "three-ways")}
    assert explicit == "explicit-1" and rows["explicit-1"].latency_ms == 2.5
    assert sorted((r.features["x"], r.prediction) for r in rows.values()) == [(0.5, 1), (1.5, 1), (2.0, 1), (3.0, 0)]
    assert all(r.model_version == "7" and r.latency_ms is not None for r in rows.values())
    assert rows[call.request_id or ""].probabilities == [0.9, 0.1]
    tracker.close()


def test_exception_in_tracked_function_is_recorded_as_error_and_reraised(api: RunningServer, tmp_path: Path) -> None:
    register(api, "failing", [])
    tracker = tracker_for(api, "failing", tmp_path)

    @tracker.track
    def predict(features: dict[str, float]) -> int:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        predict({"a": 1.0})
    assert tracker.flush(10)
    assert [r.status for r in stored(api, "failing")] == ["error"]
    tracker.close()


def test_allow_and_deny_lists_filter_features_and_bad_values_are_cleaned(api: RunningServer, tmp_path: Path) -> None:
    register(api, "filtered", [])
    tracker = tracker_for(api, "filtered", tmp_path, allow_features=["a", "b", "c", "secret"], deny_features=["secret"])
    row = {"a": 1.0, "b": float("nan"), "c": [1, 2], "secret": "pin", "other": 3}
    tracker.log(row, prediction=1, request_id="dict")
    row["a"] = 99.0  # the caller reusing its dict does not change what was logged
    positional = Tracker(
        "filtered",
        url=api.url,
        token=api.token,
        spool_dir=tmp_path / "p",
        options=FAST,
        flush_at_exit=False,
        deny_features=["f1"],
    )
    positional.log(np.array([0.5, 1.5, np.inf]), prediction=np.int64(2), request_id="array")
    assert tracker.flush(10) and positional.flush(10)
    rows = {r.request_id: r for r in stored(api, "filtered")}
    assert rows["dict"].features == {"a": 1.0, "b": None}
    assert (rows["array"].features, rows["array"].prediction) == ({"f0": 0.5, "f2": None}, 2)


def test_sampling_rate_keeps_about_that_share(api: RunningServer, tmp_path: Path) -> None:
    register(api, "sampled", [])
    tracker = tracker_for(api, "sampled", tmp_path, sample_rate=0.25)
    kept = [tracker.log({"i": i}) for i in range(2000)]
    assert tracker.flush(10)
    count = len(stored(api, "sampled"))
    assert count == sum(k is not None for k in kept)
    assert 400 <= count <= 600


def test_records_refused_as_invalid_are_quarantined_and_counted_while_the_rest_of_the_batch_is_stored(
    api: RunningServer, tmp_path: Path
) -> None:
    register(api, "strict", ["x"])
    tracker = tracker_for(api, "strict", tmp_path)
    for i in range(10):
        tracker.log({"x": float(i)} if i != 6 else {"unknown": 1.0}, request_id=f"s{i}")
    assert tracker.flush(10)
    assert len(stored(api, "strict")) == 9
    stats = tracker.stats()
    assert (stats.sent, stats.rejected, stats.quarantined, stats.dropped_spool_full) == (9, 1, 1, 0)
    [kept] = [json.loads(p.read_text()) for p in (tmp_path / "spool" / "quarantine").glob("*.json")]
    assert (kept["status"], [r["request_id"] for r in kept["records"]]) == (422, ["s6"])


def test_unknown_service_is_refused_once_never_retried_and_its_batch_quarantined(
    api: RunningServer, tmp_path: Path
) -> None:
    tracker = tracker_for(api, "not-registered", tmp_path)
    tracker.log({"x": 1.0})
    tracker.log({"x": 2.0})
    assert tracker.flush(10)
    stats = tracker.stats()
    assert (stats.rejected, stats.quarantined, stats.spooled_bytes, stats.server_down) == (2, 2, 0, False)


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    options = DeliveryOptions(queue_size=10, flush_interval=60.0)
    tracker = Tracker("q", url="http://127.0.0.1:9", spool_dir=tmp_path, options=options, flush_at_exit=False)
    for i in range(50):
        tracker.log({"i": i})
    assert tracker.stats().dropped_queue_full == 40


def test_sample_rate_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_rate must be between 0 and 1"):
        Tracker("x", sample_rate=1.5, spool_dir=tmp_path, flush_at_exit=False)


def test_straight_to_store_mode_writes_through_the_ingestor(tmp_path: Path) -> None:
    from monitor.store import Store

    url = f"sqlite:///{tmp_path / 'direct.db'}"
    store = Store.open(url)
    store.upsert_service("direct", task="classification", model_name=None, target=None, features=())
    tracker = Tracker("direct", store_url=url, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False)
    tracker.log({"x": 1.0}, prediction=1, latency_ms=1.0)
    assert tracker.flush(10)
    tracker.close()
    [row] = store.recent_predictions(store.get_service("direct"))
    assert (row.features, row.prediction) == ({"x": 1.0}, 1)
    store.close()
