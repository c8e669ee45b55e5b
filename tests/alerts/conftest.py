"""Fixtures of the alert tests: a real signed-webhook receiver on a loopback port, and a real Alertmanager."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.alertmanager import alertmanager, notified  # noqa: F401  (fixtures: a real Alertmanager)
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that checks signatures made with ``receiver.SECRET``."""
    running = Receiver()
    yield running
    running.stop()
