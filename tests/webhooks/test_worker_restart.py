"""A real ``mlwatch worker`` SIGKILLed mid-delivery loses nothing once restarted, and raises no alert twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.records import HostSample
from monitor.settings import load_settings
from monitor.store import Store
from monitor.webhooks.events import emit
from tests.webhooks.receiver import SECRET, Receiver, Step


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    """Every answer takes 0.2 s, so a kill lands while requests are in flight."""
    running = Receiver(default=Step(stall=0.2))
    yield running
    running.stop()


def _start_worker(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "worker", "--poll", "0.1", "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_worker_killed_mid_delivery_and_restarted_delivers_every_event(tmp_path: Path, slow_receiver: Receiver) -> None:
    config = tmp_path / "mlwatch.yaml"
    config.write_text(
        f"store_url: sqlite:///{tmp_path / 'mlwatch.db'}\n"
        f"webhooks:\n  - {{name: ops, url: '{slow_receiver.url}', secret_env: HOOK_SECRET, timeout: 0.5s}}\n"
        "alerts:\n  - {name: hot-cpu, kind: resource, metric: cpu_percent, threshold: 90, options: {window: 10m}}\n"
    )
    env = {**os.environ, "MLWATCH_CONFIG": str(config), "HOOK_SECRET": SECRET}
    env.pop("MLWATCH_STORE_URL", None)
    settings = load_settings(config, environ=env)
    store = Store.open(settings.store_url)
    ids = [emit(store, settings, "retrain.finished", {"service": "credit", "n": i})[0] for i in range(40)]
    store.add_host_samples("node-1", [HostSample(time.time(), "host", "", {"cpu_percent": 99.0})])

    first = _start_worker(tmp_path, env)
    try:
        slow_receiver.wait_for(lambda r: len(r.received) >= 6, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    in_flight = [d for d in store.list_deliveries(status="pending") if d.attempts > 0]
    assert in_flight, "the kill should have left claimed, undelivered rows behind"

    second = _start_worker(tmp_path, env)
    try:
        slow_receiver.wait_for(lambda r: set(r.delivered_ids()) >= set(ids), timeout=60)
        deadline = time.monotonic() + 10
        while store.delivery_counts()["delivered"] < len(ids) + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        second.terminate()
        second.wait(30)
    assert store.delivery_counts() == {"pending": 0, "delivered": 41, "failed": 0}
    assert all(r.signature_ok for r in slow_receiver.received)
    firing = {r.event_id for r in slow_receiver.received if r.json()["type"] == "alert.firing"}
    assert len(firing) == 1  # the restarted worker found the alert in the store and did not raise it again
    assert [a.state for a in store.list_alerts()] == ["firing"]
    store.close()
