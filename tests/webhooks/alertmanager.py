"""A real Prometheus Alertmanager on loopback ports, for the ``alertmanager`` format's tests.

Debian's ``prometheus-alertmanager`` package provides the binary (``.ci/run`` installs it).
Without it the tests skip, unless ``MLWATCH_REQUIRE_ALERTMANAGER=1`` makes that a failure.
Its one route groups by ``service`` and notifies a webhook (a loopback ``Receiver``) after
``group_wait: 1s``, so a test sees the grouped notification Alertmanager would send a team.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unavailable
from tests.webhooks.receiver import Receiver

BINARY = "prometheus-alertmanager"
_CONFIG = """\
route:
  receiver: hook
  group_by: [service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook_url}
        send_resolved: true
"""


def binary() -> str:
    """The Alertmanager binary; skips the test (or fails it when required) where none is installed."""
    found = shutil.which(BINARY) or shutil.which("alertmanager")
    if found:
        return found
    unavailable(
        f"{BINARY} is not installed (apt-get install -y prometheus-alertmanager)", "MLWATCH_REQUIRE_ALERTMANAGER"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Alertmanager:
    """An Alertmanager process with clustering off and its storage in ``home``."""

    def __init__(self, home: Path, hook_url: str) -> None:
        config = home / "alertmanager.yml"
        config.write_text(_CONFIG.format(hook_url=hook_url))
        self.port = _free_port()
        self.log = (home / "alertmanager.log").open("wb")
        args = [
            binary(),
            f"--config.file={config}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(home)

    @property
    def url(self) -> str:
        """Where mlwatch posts: Alertmanager's v2 alerts endpoint."""
        return f"http://127.0.0.1:{self.port}/api/v2/alerts"

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts Alertmanager holds."""
        answer = httpx.get(self.url, params=params, timeout=5)
        answer.raise_for_status()
        return list(answer.json())

    def stop(self) -> None:
        """Terminate the process and close its log."""
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()

    def _wait_ready(self, home: Path) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {(home / 'alertmanager.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("alertmanager did not become ready in 20 s")


@pytest.fixture
def notified() -> Iterator[Receiver]:
    """The loopback webhook Alertmanager notifies (Alertmanager does not sign)."""
    running = Receiver(secret=None)
    yield running
    running.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, notified: Receiver) -> Iterator[Alertmanager]:
    """A fresh Alertmanager notifying ``notified``; import both fixtures into a test module to use them."""
    running = Alertmanager(tmp_path, notified.url)
    yield running
    running.stop()
