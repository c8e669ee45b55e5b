"""Zero loss and zero duplicates across crashes: real ``mlwatch consume`` processes, real servers.

Each test publishes a known set of messages, breaks something while a consumer is in the
middle of them (SIGKILL of the consumer, a NATS restart, a PostgreSQL restart), lets the
consumers carry on, and then compares the stream's message count and the records published
with what the store holds: every request id once, none missing. The servers that restart
are the tests' own (``tests.stream.servers``), so the shared ones stay up for everyone else.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.stream.conftest import Consuming, Stream, nats_call, register, wait_for
from tests.stream.servers import NatsServer, PostgresCluster

RECORDS_PER_MESSAGE = 10
ACK_WAIT = "2"  # seconds: what a killed consumer held comes back within the test's patience


def _bodies(count: int) -> list[bytes]:
    return [
        json.dumps(
            {"records": [{"request_id": f"m{m}-{r}", "features": {"x": r}} for r in range(RECORDS_PER_MESSAGE)]}
        ).encode()
        for m in range(count)
    ]


def _counts(url: str, service: str) -> tuple[int, int]:
    """Rows and distinct request ids of ``service`` in the store, on a fresh connection each time
    (a pooled one would not survive the database's restart)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool)
    query = text(
        "SELECT count(*), count(DISTINCT p.request_id) FROM predictions p "
        "JOIN services s ON s.id = p.service_id WHERE s.name = :name"
    )
    try:
        with engine.connect() as conn:
            rows, distinct = conn.execute(query, {"name": service}).one()
    except Exception:  # the database is restarting: nothing to count yet
        return -1, -1
    finally:
        engine.dispose()
    return int(rows), int(distinct)


def _stored(url: str, service: str) -> int:
    return _counts(url, service)[0]


def _in_stream(stream: Stream) -> int:
    async def count(js: Any) -> int:
        return int((await js.stream_info(stream.name)).state.messages)

    return nats_call(stream.url, count)


def _publish_all(stream: Stream, bodies: list[bytes]) -> None:
    nats_call(stream.url, lambda js: js.add_stream(name=stream.name, subjects=stream.subjects))
    stream.publish(f"predictions.{stream.service}", bodies)


def _ack_pending(stream: Stream, durable: str) -> int:
    async def pending(js: Any) -> int:
        return int((await js.consumer_info(stream.name, durable)).num_ack_pending)

    return nats_call(stream.url, pending)


def _freeze_holding_messages(consuming: Consuming, stream: Stream, durable: str) -> int:
    """Stop the consumer (SIGSTOP) at a moment it holds fetched, unacknowledged messages, and
    return how many. A kill between one batch's acks and the next fetch would hold none, and
    the redelivery this test is about would not happen; so freeze, look, and let it run a
    little more until the server says messages are out with it."""
    for _ in range(200):
        os.kill(consuming.process.pid, signal.SIGSTOP)
        time.sleep(0.05)  # acks already on the wire reach the server before it is asked
        held = _ack_pending(stream, durable)
        if held:
            return held
        os.kill(consuming.process.pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError(f"the consumer never held a fetched message: {consuming.describe()}")


def _assert_each_record_once(url: str, stream: Stream, messages: int) -> None:
    assert _in_stream(stream) == messages
    assert _counts(url, stream.service) == (messages * RECORDS_PER_MESSAGE,) * 2


def test_a_consumer_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    postgres_url: str, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    register(postgres_url, stream.service).close()
    bodies = _bodies(1500)
    _publish_all(stream, bodies)
    first = consumers(postgres_url, stream, "--durable", "crash", "--batch", "10", "--ack-wait", ACK_WAIT)
    wait_for(lambda: _stored(postgres_url, stream.service) > 0, 30, first.describe)
    held = _freeze_holding_messages(first, stream, "crash")
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    assert 0 < _stored(postgres_url, stream.service) < len(bodies) * RECORDS_PER_MESSAGE, "killed too late"

    second = consumers(postgres_url, stream, "--durable", "crash", "--batch", "100", "--ack-wait", ACK_WAIT)
    total = len(bodies) * RECORDS_PER_MESSAGE
    wait_for(lambda: _stored(postgres_url, stream.service) == total, 60, second.describe)
    stats = second.stop()
    _assert_each_record_once(postgres_url, stream, len(bodies))
    assert stats["redelivered"] >= held, "the killed consumer held messages it never acknowledged"
    assert stats["dead_lettered"] == 0 and stats["retried"] == 0


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server of this test's own, which it may restart."""
    server = NatsServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_nats_restart_mid_stream_loses_nothing_and_the_consumer_says_so_once(
    postgres_url: str, own_nats: NatsServer, consumers: Callable[..., Consuming]
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream = Stream(own_nats.url, f"T_{tag}", f"svc-{tag}", f"nosuch-{tag}")
    register(postgres_url, stream.service).close()
    bodies = _bodies(1500)
    _publish_all(stream, bodies)
    consuming = consumers(postgres_url, stream, "--batch", "10", "--ack-wait", ACK_WAIT)
    wait_for(lambda: _stored(postgres_url, stream.service) > 0, 30, consuming.describe)
    own_nats.stop()
    wait_for(lambda: "lost the connection to NATS" in consuming.log.read_text(), 20, consuming.describe)
    time.sleep(2)  # several reconnection attempts fail meanwhile: none of them may add a line
    own_nats.start()

    total = len(bodies) * RECORDS_PER_MESSAGE
    wait_for(lambda: _stored(postgres_url, stream.service) == total, 60, consuming.describe)
    stats = consuming.stop()
    _assert_each_record_once(postgres_url, stream, len(bodies))
    log = consuming.log.read_text()
    assert log.count(f"lost the connection to NATS at {own_nats.url} (") == 1, log
    assert log.count(f"reconnected to NATS at {own_nats.url} after") == 1, log
    assert " NATS: " not in log and "Traceback" not in log, log
    assert stats["dead_lettered"] == 0


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this module's own, which a test may restart."""
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


def test_a_postgres_restart_mid_stream_loses_nothing_and_stores_nothing_twice(
    own_postgres: PostgresCluster, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    url = own_postgres.url
    register(url, stream.service).close()
    bodies = _bodies(1000)
    _publish_all(stream, bodies)
    consuming = consumers(url, stream, "--batch", "10", "--ack-wait", ACK_WAIT)
    wait_for(lambda: _stored(url, stream.service) > 0, 30, consuming.describe)
    own_postgres.stop()
    wait_for(lambda: "the store is unavailable" in consuming.log.read_text(), 20, consuming.describe)
    own_postgres.start()

    total = len(bodies) * RECORDS_PER_MESSAGE
    wait_for(lambda: _stored(url, stream.service) == total, 60, consuming.describe)
    stats = consuming.stop()
    _assert_each_record_once(url, stream, len(bodies))
    assert stats["retried"] > 0 and stats["dead_lettered"] == 0
    log = consuming.log.read_text()
    assert "Traceback" not in log and log.count("could not write the consumer's heartbeat") <= 1, log


def test_an_unreachable_broker_at_the_start_is_one_clear_error_naming_its_url(
    sqlite_url: str, consumers: Callable[..., Consuming]
) -> None:
    from tests.conftest import free_port

    url = f"nats://127.0.0.1:{free_port()}"
    register(sqlite_url, "credit").close()
    consuming = consumers(sqlite_url, Stream(url, "T_none", "credit", "nosuch"))
    consuming.process.wait(30)
    log = consuming.log.read_text()
    assert consuming.process.returncode == 1, log
    assert f"Error: cannot reach NATS at {url}" in log and "nats-server -js" in log
    assert "Traceback" not in log and " NATS: " not in log, log
