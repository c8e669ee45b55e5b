"""MQTT for edge devices: the SDK publishing (``sink="mqtt://..."``) and ``mlwatch consume --stream mqtt://``.

Against the real Mosquitto (``MLWATCH_TEST_MQTT_URL``, default ``mqtt://127.0.0.1:1883``;
skipped where none answers unless ``MLWATCH_REQUIRE_MQTT=1``), every test under topics and
client ids of its own; the offline-device test starts a ``mosquitto`` of its own on a free
port, which is not there while the device logs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.store import Store
from monitor.stream.mqtt import subject_of
from tests.collectors.test_sdk_edge import Clock
from tests.conftest import free_port, stop_process, unavailable
from tests.stream.conftest import Consuming, consume_process, register, wait_for

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.2, batch_size=20)
# retries only when the test flushes: none between the broker's start and the consumer's subscription
PATIENT = DeliveryOptions(flush_interval=0.05, backoff_initial=3600.0, backoff_max=3600.0, batch_size=20)
DEFAULT_MQTT = "mqtt://127.0.0.1:1883"


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The URL of a reachable MQTT broker, or skip (fail where MLWATCH_REQUIRE_MQTT=1)."""
    url = os.environ.get("MLWATCH_TEST_MQTT_URL", DEFAULT_MQTT)
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 1883), timeout=3).close()
    except OSError as exc:
        unavailable(f"MQTT not reachable at {url} (set MLWATCH_TEST_MQTT_URL): {exc}", "MLWATCH_REQUIRE_MQTT")
    return url


@dataclass
class Topics:
    """A test's own topic prefix, service, and consumer client id."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def prefix(self) -> str:
        return f"t-{self.tag}"

    @property
    def service(self) -> str:
        return f"svc-{self.tag}"

    @property
    def durable(self) -> str:
        return f"consume-{self.tag}"

    def topic(self, kind: str, service: str | None = None) -> str:
        return f"{self.prefix}/{kind}/{service or self.service}"


@pytest.fixture
def mqtt_consumers(tmp_path: Path) -> Iterator[Callable[..., Consuming]]:
    """Start ``mlwatch consume --stream mqtt://...`` on a store; killed at the end if still running."""
    started: list[Consuming] = []

    def start(store_url: str, url: str, topics: Topics) -> Consuming:
        args = ["--stream", url, "--durable", topics.durable, "--json"]
        args += ["--subject", f"{topics.prefix}/predictions/+", "--subject", f"{topics.prefix}/labels/+"]
        started.append(consume_process(tmp_path, store_url, args, len(started)))
        return started[-1]

    yield start
    for consuming in started:
        consuming.kill()


class Client:
    """A plain paho client of the test's: publishes with QoS 1, and keeps what its subscriptions get."""

    def __init__(self, url: str, subscribe: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        parsed = urlparse(url)
        self.received: list[Any] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self.received.append(m)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.client.loop_start()
        if subscribe:
            self.client.subscribe(subscribe, qos=1)
            assert self._subscribed.wait(5)

    def publish(self, topic: str, body: bytes) -> None:
        self.client.publish(topic, body, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _count(store: Store, service: str, start: float = 0, end: float = 2e9) -> int:
    return store.count_window(store.get_service(service), start, end)


def test_sdk_batches_over_mqtt_are_stored_labels_join_and_bad_messages_are_dead_lettered(
    mqtt_url: str, sqlite_url: str, tmp_path: Path, mqtt_consumers: Callable[..., Consuming]
) -> None:
    topics = Topics()
    store = register(sqlite_url, topics.service)
    dead = Client(mqtt_url, subscribe=f"mlwatch/dead/{topics.prefix}/#")
    consuming = mqtt_consumers(sqlite_url, mqtt_url, topics)
    consuming.wait_started()
    tracker = Tracker(
        topics.service, sink=f"{mqtt_url}/{topics.prefix}", spool_dir=tmp_path / "spool", options=FAST,
        flush_at_exit=False, clock=lambda: 1_700_000_000.0,
    )  # fmt: skip
    ids = [tracker.log({"x": i * 0.5, "c": "a"}, prediction=i % 2) for i in range(250)]
    assert tracker.flush(10) and tracker.stats().sent == 250
    tracker.close()
    sender = Client(mqtt_url)
    sender.publish(topics.topic("predictions"), b"{not json")
    sender.publish(topics.topic("predictions", f"nosuch-{topics.tag}"), json.dumps({"request_id": "q"}).encode())
    sender.publish(
        topics.topic("labels"), json.dumps({"labels": [{"request_id": i, "label": 1} for i in ids]}).encode()
    )

    service = store.get_service(topics.service)
    labelled = lambda: sum(p.has_label for p in store.recent_predictions(service, 1000, since=0)) == 250  # noqa: E731
    wait_for(labelled, 20, consuming.describe)
    wait_for(lambda: len(dead.received) == 2, 10, consuming.describe)
    stats = consuming.stop()
    sender.close()
    dead.close()
    assert {p.ts for p in store.recent_predictions(service, 1000, since=0)} == {1_700_000_000.0}
    assert (stats["stored"], stats["dead_lettered"]) == (500, 2)
    letters = {m.topic: json.loads(m.payload) for m in dead.received}
    bad = letters[f"mlwatch/dead/{topics.topic('predictions')}"]
    assert bad["payload"] == "{not json" and "JSON" in bad["error"]
    unknown = letters[f"mlwatch/dead/{topics.topic('predictions', f'nosuch-{topics.tag}')}"]
    assert f"nosuch-{topics.tag}" in unknown["error"]
    store.close()


def test_what_is_published_while_the_consumer_is_down_is_stored_when_it_is_back(
    mqtt_url: str, sqlite_url: str, mqtt_consumers: Callable[..., Consuming]
) -> None:
    topics = Topics()
    store = register(sqlite_url, topics.service)
    first = mqtt_consumers(sqlite_url, mqtt_url, topics)
    first.wait_started()  # the broker now holds its persistent session and subscriptions
    assert first.stop()["consumed"] == 0

    sender = Client(mqtt_url)
    for start in range(0, 100, 10):
        records = [
            {"request_id": f"r{i}", "features": {"x": float(i)}, "prediction": 1} for i in range(start, start + 10)
        ]
        sender.publish(topics.topic("predictions"), json.dumps({"records": records}).encode())
    sender.close()
    assert _count(store, topics.service) == 0

    second = mqtt_consumers(sqlite_url, mqtt_url, topics)
    wait_for(lambda: _count(store, topics.service) == 100, 20, second.describe)
    assert second.stop()["stored"] == 100
    store.close()


def test_a_device_offline_for_an_hour_bursts_its_spool_and_records_keep_their_own_time(
    sqlite_url: str, tmp_path: Path, mqtt_consumers: Callable[..., Consuming]
) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    topics = Topics()
    store = register(sqlite_url, topics.service)
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    start = 1_700_000_000.0
    clock = Clock(start)
    device = Tracker(
        topics.service, sink=f"{url}/{topics.prefix}", spool_dir=tmp_path / "spool", options=PATIENT,
        flush_at_exit=False, clock=clock, spool_max_age=None,
    )  # fmt: skip
    ids = []
    for minute in range(60):  # no broker: one record a minute for an hour, all spooled
        clock.now = start + minute * 60
        ids.append(device.log({"x": float(minute)}, prediction=minute % 2))
    assert not device.flush(1.0)
    assert device.stats().spooled == 60 and device.stats().sent == 0

    broker = subprocess.Popen(["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), 10, lambda: "mosquitto did not start")
        consuming = mqtt_consumers(sqlite_url, url, topics)
        consuming.wait_started()
        assert device.flush(20)  # the burst, oldest batch first
        device.close()
        wait_for(lambda: _count(store, topics.service) == 60, 20, consuming.describe)
        stats = consuming.stop()
    finally:
        stop_process(broker)
    found = store.recent_predictions(store.get_service(topics.service), 100, since=0)
    assert {p.request_id: p.ts for p in found} == {rid: start + i * 60 for i, rid in enumerate(ids)}
    # a check's window is read by the records' own time, not by when they arrived
    assert _count(store, topics.service, start, start + 1800) == 30
    assert stats["stored"] == 60
    store.close()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_an_unreachable_broker_at_start_is_a_clear_error_naming_the_url(tmp_path: Path, sqlite_url: str) -> None:
    register(sqlite_url, "credit").close()
    url = f"mqtt://127.0.0.1:{free_port()}"
    env = {**os.environ, "MLWATCH_STORE_URL": sqlite_url, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "consume", "--stream", url], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot reach the MQTT broker at {url}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_topic_is_read_as_the_subject_of_its_last_two_levels() -> None:
    assert subject_of("mlwatch/predictions/credit") == "predictions.credit"
    assert subject_of("sites/7/labels/credit") == "labels.credit"
    assert subject_of("credit") == "credit"
