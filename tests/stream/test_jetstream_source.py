"""The JetStream source on a NATS server of the test's own, stopped while a batch is being settled."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from monitor.stream.consumer import Ack
from monitor.stream.jetstream import JetStreamOptions, JetStreamSource
from tests.stream.servers import NatsServer

SECOND = b'{"request_id": "r2", "features": {}}'


async def _publish(url: str, subject: str, body: bytes) -> None:
    """Publish once the stream answers: after a restart JetStream takes a moment to recover it."""
    import nats
    from nats.js.errors import NoStreamResponseError

    nc = await nats.connect(url, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        for _ in range(100):
            try:
                await js.publish(subject, body)
                return
            except NoStreamResponseError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"the stream of {subject} did not answer at {url} within 10 s")
    finally:
        await nc.close()


async def _fetch_until(source: JetStreamSource, body: bytes, seconds: float) -> list[bytes]:
    """What the source fetches (and acknowledges) until ``body`` came, for at most ``seconds``."""
    got: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while body not in got and asyncio.get_running_loop().time() < deadline:
        messages = await source.fetch(10)
        got += [m.data for m in messages]
        await source.settle([Ack() for _ in messages])
    return got


def test_a_settle_while_nats_is_down_warns_and_the_consumer_goes_on_after_the_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The acks of a batch whose records are committed cannot reach a stopped server: settle
    says so and returns (the messages come back after ack_wait, to be deduplicated), and once
    the server is back the same source reads what is published next."""
    server = NatsServer(tmp_path)
    server.start()
    options = JetStreamOptions(
        server.url, stream="SETTLE", stream_subjects=("predictions.>",), durable="d", ack_wait=1.0, settle_wait=1
    )

    async def scenario() -> tuple[int, list[bytes]]:
        source = JetStreamSource(options)
        await source.open()  # it creates the stream
        try:
            await _publish(server.url, "predictions.svc", b'{"request_id": "r1", "features": {}}')
            first = await source.fetch(10)
            server.stop()
            with caplog.at_level(logging.WARNING, logger="mlwatch.consume"):
                await source.settle([Ack() for _ in first])  # no exception: the consumer carries on
            server.start()
            await _publish(server.url, "predictions.svc", SECOND)
            later = await _fetch_until(source, SECOND, 20)  # and r1 again where its ack was lost
            return len(first), later
        finally:
            await source.close()

    try:
        fetched, later = asyncio.run(scenario())
    finally:
        server.stop()
    assert fetched == 1
    assert SECOND in later
    assert "could not confirm the settlement of 1 messages with NATS" in caplog.text
