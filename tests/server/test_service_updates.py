"""POST /v1/services on a service that exists: it extends and changes settings, and never drops
features, the target or the task silently (409 unless ``?replace=true``)."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import CheckSettings
from monitor.store import Store
from tests.conftest import RunningServer

FULL = {
    "name": "credit",
    "task": "classification",
    "target": "default",
    "features": [{"name": "age"}, {"name": "income"}, {"name": "city", "type": "categorical"}],
}


def _post(server: RunningServer, body: dict[str, Any], **params: str) -> Any:
    with server.client() as client:
        return client.post("/v1/services", json=body, params=params)


def _stored(server: RunningServer) -> Any:
    store = Store.open(server.store_url)
    try:
        return store.get_service("credit")
    finally:
        store.close()


def test_reposting_a_service_with_fewer_features_is_refused_and_nothing_is_dropped(server: RunningServer) -> None:
    assert _post(server, FULL).status_code == 200
    answer = _post(server, {"name": "credit", "features": [{"name": "age"}]})
    assert answer.status_code == 409
    assert "drops the features income, city" in answer.json()["message"]
    assert "replace=true" in answer.json()["message"]
    stored = _stored(server)
    assert [f.name for f in stored.features] == ["age", "income", "city"] and stored.target == "default"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"target": "churned"}, "changes the target 'default' to 'churned'"),
        ({"task": "regression"}, "changes the task 'classification' to 'regression'"),
        ({"features": [*FULL["features"][:2], {"name": "city", "type": "text"}]}, "changes the type of city"),
    ],
)
def test_changing_the_target_task_or_a_feature_type_needs_replace(
    server: RunningServer, change: dict[str, Any], said: str
) -> None:
    assert _post(server, FULL).status_code == 200
    answer = _post(server, {**FULL, **change})
    assert answer.status_code == 409 and said in answer.json()["message"]
    assert _post(server, {**FULL, **change}, replace="true").status_code == 200


def test_an_update_adds_features_keeps_what_it_leaves_out_and_sets_window_and_latency_bound(
    server: RunningServer,
) -> None:
    assert _post(server, FULL).status_code == 200
    answer = _post(server, {"name": "credit", "features": [{"name": "score"}], "window": "15m"})
    assert answer.status_code == 409  # a list that leaves registered features out drops them
    answer = _post(server, {"name": "credit", "window": "15m", "latency_bound_ms": 40})
    assert answer.status_code == 200, answer.text
    answer = _post(server, {"name": "credit", "features": [*FULL["features"], {"name": "score"}]})
    assert answer.status_code == 200, answer.text
    stored = _stored(server)
    assert [f.name for f in stored.features] == ["age", "income", "city", "score"]
    assert (stored.target, stored.task) == ("default", "classification")
    assert (stored.config["window"], stored.config["latency_bound_ms"]) == (900.0, 40.0)


def test_replace_true_replaces_the_definition(server: RunningServer) -> None:
    assert _post(server, FULL).status_code == 200
    answer = _post(server, {"name": "credit", "features": [{"name": "age"}]}, replace="true")
    assert answer.status_code == 200
    assert [f.name for f in _stored(server).features] == ["age"]


def test_an_update_sets_the_drift_share_and_keeps_the_other_settings(server: RunningServer) -> None:
    assert _post(server, {**FULL, "sample_size": 5000}).status_code == 200
    answer = _post(server, {"name": "credit", "drift_share": 0.25})
    assert answer.status_code == 200, answer.text
    settings = CheckSettings.of(_stored(server))
    assert (settings.drift_share, settings.sample_size, settings.window) == (0.25, 5000, 3600.0)


def test_an_update_sets_the_quality_target(server: RunningServer) -> None:
    assert _post(server, FULL).status_code == 200
    answer = _post(server, {"name": "credit", "quality_target": {"accuracy": 0.9}})
    assert answer.status_code == 200, answer.text
    assert CheckSettings.of(_stored(server)).quality_target == {"accuracy": 0.9}


@pytest.mark.parametrize(
    "bad",
    [
        {"window": "0s"},
        {"window": "soon"},
        {"latency_bound_ms": -1},
        {"sample_size": 5},
        {"drift_share": 1.5},
        {"quality_target": {"acuracy": 0.9}},
        {"quality_target": {"rmse": 0.9}},
        {"quality_target": {"accuracy": "high"}},
    ],
)
def test_settings_are_validated_like_the_config(server: RunningServer, bad: dict[str, Any]) -> None:
    answer = _post(server, {**FULL, **bad})
    assert answer.status_code == 422
    assert next(iter(bad)) in answer.json()["message"]
