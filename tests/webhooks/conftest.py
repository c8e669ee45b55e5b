"""Fixtures of the webhook tests: a real signed-webhook receiver on a loopback port, a real Alertmanager,
a migrated SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.store import Store
from tests.webhooks.alertmanager import alertmanager, notified  # noqa: F401  (fixtures: a real Alertmanager)
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that checks signatures made with ``receiver.SECRET``."""
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def local(sqlite_url: str) -> Iterator[Store]:
    """A migrated SQLite store, closed afterwards."""
    opened = Store.open(sqlite_url, migrate=True)
    yield opened
    opened.close()
