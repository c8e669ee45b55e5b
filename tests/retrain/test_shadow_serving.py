"""A challenger in shadow through the real processes: ``mlwatch server``, ``mlwatch serve`` and
the worker's shadow policy, on a SQLite store and a SQLite-backed MLflow registry.

Versions: 1 a one-split tree (the first champion), 2 a logistic regression that is right far
more often, 3 a model that raises on every call (same signature), 4 one that takes other
columns, 5 one that ends the process it runs in, 7 one that never returns
(``tests.retrain.shadow_models``). Requests carry ``X-Request-ID`` so that
labels can be sent for their rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from monitor.store import Store
from retrain.tasks import StageReview
from tests.retrain.scenario import frame
from tests.retrain.serving_stack import SHADOW_TIMEOUT, Stack, active_stage, error_of, latest_stage, running, until

POLICY = {
    "auto_promote": True,
    "stages": ["shadow"],
    "shadow": {"min_labelled": 300, "max_duration": "1d"},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(tmp_path_factory.mktemp("shadow"), POLICY) as started:
        yield started


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.api.client() as opened:
        yield opened


def _shadow(stack: Stack) -> dict[str, Any]:
    return dict(stack.version()["shadow"])


def test_a_shadow_of_another_signature_or_stage_is_refused_naming_the_key(client: httpx.Client) -> None:
    url = "/v1/services/credit/stages"
    message = error_of(client.post(url, json={"version": "4"}), 422)
    assert message.startswith("version: version 4's input signature differs from champion 1's: lacks color")
    assert error_of(client.post(url, json={"version": "2", "stage": "rainbow"}), 422).startswith("stage: unknown stage")
    assert error_of(client.post(url, json={"version": "1"}), 422).startswith("version: version 1 is the champion")
    assert error_of(client.post(url, json={"version": "2", "share": 0.5}), 422).startswith(
        "share: a shadow scores every request and takes no share"
    )
    for share in (0, 1, -0.5, 1e308, "half"):
        body = {"version": "2", "stage": "canary", "share": share}
        assert error_of(client.post(url, json=body), 422).startswith("share:")
    assert "unknown version '9'" in error_of(client.post(url, json={"version": "9"}), 404)
    assert "no stage in progress" in error_of(client.delete(url), 409)
    assert active_stage(client) is None


def test_a_version_in_shadow_is_scored_beside_the_champion_and_never_answers(
    stack: Stack, client: httpx.Client
) -> None:
    started = client.post("/v1/services/credit/stages", json={"version": "2"})
    assert started.status_code == 201, started.text
    assert (started.json()["status"], started.json()["champion_version"]) == ("active", "1")
    assert "already has version 2 in shadow" in error_of(
        client.post("/v1/services/credit/stages", json={"version": "3"}), 409
    )
    until(lambda: _shadow(stack)["version"] == "2", "serve to load the shadow")
    data = frame(300, seed=7)
    for i in range(3):
        rows = data.iloc[i * 100 : (i + 1) * 100]
        answer = stack.score(rows, f"r{i}")
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
        assert answer.json()["predictions"] == stack.champion.predict(rows.drop(columns=["label"])).tolist()
    compared = until(
        lambda: (active_stage(client) or {}).get("comparison", {}).get("rows") == 300 and active_stage(client), "rows"
    )
    said = stack.challenger.predict(data.drop(columns=["label"]))
    before = stack.champion.predict(data.drop(columns=["label"]))
    comparison = compared["comparison"]
    assert comparison["agreement"] == pytest.approx(float(np.mean(said == before)))
    assert comparison["labelled"] == 0 and comparison["verdict"] is None
    assert comparison["estimated"]["shadow"] > comparison["estimated"]["champion"]
    labels = [{"request_id": f"r{i // 100}-{i % 100}", "label": int(v)} for i, v in enumerate(data["label"])]
    assert client.post("/v1/services/credit/labels", json={"labels": labels}).status_code == 200
    comparison = active_stage(client)["comparison"]  # type: ignore[index]
    assert comparison["labelled"] == 300
    assert comparison["shadow"]["accuracy"] == pytest.approx(float(np.mean(said == data["label"])))
    assert comparison["shadow"]["accuracy"] > comparison["champion"]["accuracy"] + 0.1


def test_the_worker_promotes_a_shadow_better_on_live_labelled_rows(stack: Stack, client: httpx.Client) -> None:
    settings = stack.settings()
    store = Store.open(settings.store_url)
    try:
        StageReview(store, settings).tick(time.time())
        events = [d.event_type for d in store.list_deliveries()]
    finally:
        store.close()
    ended = latest_stage(client)
    assert ended["status"] == "passed" and ended["reason"].startswith("better on 300 live labelled rows")
    assert ended["details"]["comparison"]["verdict"]["passed"] is True
    assert client.get("/v1/services/credit/models").json()["champion"] == "2"
    assert {"model.shadow_started", "model.shadow_ended", "model.promoted"} <= set(events)
    until(lambda: httpx.get(f"{stack.serve}/version").json()["version"] == "2", "serve to swap in version 2")
    # serve learns of the champion and of the ended stage on separate polls: wait for both
    until(lambda: _shadow(stack)["version"] is None, "serve to drop the ended shadow")


def _shadow_scored_beside_the_replies(
    stack: Stack, client: httpx.Client, version: str, seed: int, prefix: str
) -> tuple[Any, list[Any]]:
    """Put a faulty ``version`` in shadow and send 5 requests: each answered by the champion as
    ever. Returns the rows and the champion's answers, to ask again once the shadow is gone."""
    assert client.post("/v1/services/credit/stages", json={"version": version}).status_code == 201
    until(lambda: _shadow(stack)["version"] == version, f"serve to load version {version} in shadow")
    data = frame(50, seed=seed)
    expected = stack.challenger.predict(data.drop(columns=["label"])).tolist()
    for i in range(5):
        answer = stack.score(data, f"{prefix}{i}")
        assert answer.status_code == 200 and answer.json()["predictions"] == expected
    return data, expected


def _crashed(client: httpx.Client, what: str) -> dict[str, Any]:
    """The latest stage, once it has ended as crashed."""
    return dict(until(lambda: (s := latest_stage(client))["status"] == "crashed" and s, what))


def test_a_shadow_that_crashes_never_affects_the_replies_and_ends_its_stage(stack: Stack, client: httpx.Client) -> None:
    data, expected = _shadow_scored_beside_the_replies(stack, client, "3", seed=8, prefix="c")
    ended = _crashed(client, "the crash")
    assert "RuntimeError: shadow model exploded" in ended["reason"] and ended["crashes"] >= 1
    assert _shadow(stack)["crashes"] >= 1
    assert stack.score(data, "after").json()["predictions"] == expected
    assert active_stage(client) is None


def test_a_shadow_that_hangs_is_stopped_after_its_timeout_and_ends_its_stage(
    stack: Stack, client: httpx.Client
) -> None:
    data, expected = _shadow_scored_beside_the_replies(stack, client, "7", seed=10, prefix="h")
    until(lambda: _shadow(stack)["busy_since"] > 0, "the shadow to be stuck in a model call")
    ended = _crashed(client, "the hung shadow to be stopped")
    assert ended["version"] == "7"
    assert f"model call ran for more than {SHADOW_TIMEOUT:g} s (hung)" in ended["reason"]
    until(lambda: _shadow(stack)["version"] is None, "a new shadow process, with nothing in shadow")
    assert stack.score(data, "after-hang").json()["predictions"] == expected
    assert active_stage(client) is None


def test_a_shadow_that_kills_its_process_never_affects_the_replies_and_ends_its_stage(
    stack: Stack, client: httpx.Client
) -> None:
    data, expected = _shadow_scored_beside_the_replies(stack, client, "5", seed=9, prefix="k")
    ended = _crashed(client, "the shadow process to die")
    assert ended["version"] == "5" and "the shadow process died with exit code 70" in ended["reason"]
    assert stack.score(data, "after-kill").json()["predictions"] == expected
    assert client.post("/v1/services/credit/stages", json={"version": "3"}).status_code == 201
    until(lambda: _shadow(stack)["version"] == "3", "a new shadow process to load the next shadow")
