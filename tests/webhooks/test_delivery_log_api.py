"""GET /v1/webhooks/deliveries[/{id}] on a real server: each delivery with its attempts, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit
from tests.conftest import RunningServer, start_server
from tests.webhooks.receiver import SECRET, Clock, Receiver, Step


@pytest.fixture
def server(tmp_path: Path, store: Store, store_url: str) -> Iterator[RunningServer]:
    running = start_server(tmp_path, store_url)
    yield running
    running.stop()


def _deliver_after_two_503s(store: Store, receiver: Receiver) -> str:
    receiver.script(Step(503), Step(503), Step(200))
    hook = WebhookConfig(name="ops", url=receiver.url, secret_env="HOOK_SECRET", backoff_initial=1.0)
    settings = Settings(webhooks=(hook,))
    (event_id,) = emit(store, settings, "test", {})
    clock = Clock()
    deliverer = Deliverer(store, settings, clock=clock, environ={"HOOK_SECRET": SECRET}, rng=lambda: 0.5)
    for _ in range(5):
        deliverer.run_once()
        clock.advance(5.0)
    deliverer.close()
    return event_id


def test_the_api_lists_each_attempt_of_a_delivery(server: RunningServer, store: Store, receiver: Receiver) -> None:
    event_id = _deliver_after_two_503s(store, receiver)
    with server.client() as api:
        (listed,) = api.get("/v1/webhooks/deliveries", params={"event_id": event_id}).json()
        one = api.get(f"/v1/webhooks/deliveries/{listed['id']}")
    assert (listed["status"], listed["attempts"], listed["last_status_code"]) == ("delivered", 3, 200)
    codes = [(a["attempt"], a["status_code"], a["error"]) for a in listed["attempt_log"]]
    assert codes == [(1, 503, "HTTP 503: ok"), (2, 503, "HTTP 503: ok"), (3, 200, None)]
    assert all(a["latency_ms"] > 0 and a["started_at"] > 0 for a in listed["attempt_log"])
    assert one.status_code == 200 and one.json() == listed


def test_an_unknown_delivery_is_a_404_that_says_where_to_look(server: RunningServer) -> None:
    with server.client() as api:
        missing = api.get("/v1/webhooks/deliveries/424242")
        assert api.get("/v1/webhooks/deliveries/0").status_code == 422
    assert (
        missing.status_code == 404 and "list deliveries with GET /v1/webhooks/deliveries" in missing.json()["message"]
    )
