"""The webhook log on the alerts page shows every attempt of a delivery, not only the last."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from monitor.config import Settings, WebhookConfig
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit
from tests.webhooks.receiver import Clock, Receiver, Step

Open = Callable[..., AppTest]
PAGE = "pages/alerts.py"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(secret=None)
    yield running
    running.stop()


def _delivered_after_two_503s(url: str, receiver: Receiver) -> None:
    receiver.script(Step(503), Step(503), Step(200))
    settings = Settings(webhooks=(WebhookConfig(name="ops", url=receiver.url, backoff_initial=1.0),))
    store = Store.open(url)
    emit(store, settings, "test", {})
    clock = Clock()
    deliverer = Deliverer(store, settings, clock=clock, rng=lambda: 0.5)
    for _ in range(4):
        deliverer.run_once()
        clock.advance(5.0)
    deliverer.close()
    store.close()


def _table(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_the_webhook_log_shows_each_attempt_with_its_status(
    open_app: Open, dashboard_env: str, receiver: Receiver
) -> None:
    _delivered_after_two_503s(dashboard_env, receiver)
    at = open_app(page=PAGE)
    assert not at.exception
    log = _table(at, "tries")
    assert list(log["tries"]) == ["503 → 503 → 200"] and list(log["HTTP"]) == [200]
    attempts = _table(at, "attempt")
    assert list(attempts["attempt"]) == [1, 2, 3] and list(attempts["HTTP"]) == [503, 503, 200]
    assert list(attempts["error"])[:2] == ["HTTP 503: ok", "HTTP 503: ok"]
    assert str(attempts["started"].dt.tz) == "Europe/Berlin"
