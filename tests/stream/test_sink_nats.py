"""The SDK publishing to NATS JetStream (``sink="nats://..."``): the real server, the real consumer.

The shared server (``MLWATCH_TEST_NATS_URL``) carries each test's own stream; the outage
test starts a ``nats-server`` of its own on a free port, with its store in the test's
directory, so that it can be stopped and started again without touching anyone else's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.sdk.jetstream import JetStreamTransport
from monitor.sdk.sink import require, sink_transport
from monitor.sdk.spool import default_directory
from monitor.sdk.transport import HttpTransport
from monitor.stream.messages import Message, decode
from tests.conftest import free_port, stop_process
from tests.stream.conftest import Consuming, Stream, nats_call, register, wait_for

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.2, batch_size=200)


def _add_stream(stream: Stream, url: str | None = None, **limits: Any) -> None:
    async def add(js: Any) -> None:
        await js.add_stream(name=stream.name, subjects=stream.subjects, **limits)

    nats_call(url or stream.url, add)


def _read(stream: Stream, count: int, url: str | None = None) -> list[Any]:
    """The first ``count`` messages of the test's stream, oldest first."""

    async def read(js: Any) -> list[Any]:
        sub = await js.pull_subscribe(f"predictions.{stream.service}", stream=stream.name)
        found: list[Any] = []
        deadline = time.monotonic() + 10
        while len(found) < count and time.monotonic() < deadline:
            try:
                found += await sub.fetch(count - len(found), timeout=1.0)
            except TimeoutError:
                continue
        return found

    return nats_call(url or stream.url, read)


def _stream_records(stream: Stream, url: str | None = None) -> list[dict[str, Any]]:
    """Every record the stream holds, in order."""

    async def info(js: Any) -> int:
        return int((await js.stream_info(stream.name)).state.messages)

    messages = _read(stream, nats_call(url or stream.url, info), url)
    return [record for m in messages for record in json.loads(m.data)["records"]]


def _tracker(stream: Stream, tmp_path: Path, **kwargs: Any) -> Tracker:
    kwargs.setdefault("sink", stream.url)
    return Tracker(stream.service, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False, **kwargs)


def test_each_batch_is_one_message_on_the_service_subject_that_the_consumer_decodes(
    stream: Stream, tmp_path: Path
) -> None:
    _add_stream(stream)
    tracker = _tracker(stream, tmp_path, clock=lambda: 1_700_000_000.0)
    ids = [tracker.log({"x": i * 0.5, "c": f"k{i % 3}"}, prediction=i % 2, latency_ms=1.5) for i in range(450)]
    assert tracker.flush(10)
    tracker.close()

    messages = _read(stream, 3)
    decoded = [decode(Message(m.subject, m.data), 10_000) for m in messages]
    assert [m.subject for m in messages] == [f"predictions.{stream.service}"] * 3
    assert [len(d.predictions) for d in decoded] == [200, 200, 50]
    records = [r for d in decoded for r in d.predictions]
    assert [r.request_id for r in records] == ids
    assert {r.ts for r in records} == {1_700_000_000.0}
    assert records[7].features == {"x": 3.5, "c": "k1"} and records[7].latency_ms == 1.5
    assert len({m.headers["Nats-Msg-Id"] for m in messages}) == 3
    assert tracker.stats().sent == 450


def test_records_wait_in_the_spool_until_a_stream_holds_the_subject(stream: Stream, tmp_path: Path) -> None:
    tracker = _tracker(stream, tmp_path)
    ids = [tracker.log({"x": float(i)}, prediction=1) for i in range(30)]
    assert not tracker.flush(1.5)
    waiting = tracker.stats()
    assert (waiting.sent, waiting.spooled, waiting.server_down) == (0, 30, True)

    _add_stream(stream)
    assert tracker.flush(10)
    tracker.close()
    assert [r["request_id"] for r in _stream_records(stream)] == ids
    assert tracker.stats().sent == 30


def test_a_batch_over_the_max_payload_is_split_and_a_record_too_large_alone_is_quarantined(
    stream: Stream, tmp_path: Path
) -> None:
    _add_stream(stream)  # the server's max payload is NATS's default, 1 MiB
    tracker = _tracker(stream, tmp_path, max_body_bytes=4 * 1024 * 1024)
    text = "t" * 20_000
    ids = [tracker.log({"x": float(i), "t": text}, prediction=1) for i in range(120)]  # 2.4 MB in one batch
    huge = tracker.log({"x": -1.0, "t": "h" * 1_500_000}, prediction=1)
    assert tracker.flush(20)
    tracker.close()

    assert sorted(r["request_id"] for r in _stream_records(stream)) == sorted(ids)
    stats = tracker.stats()
    assert (stats.sent, stats.quarantined, stats.rejected) == (120, 1, 1)
    [kept] = [json.loads(p.read_text()) for p in (tmp_path / "spool" / "quarantine").glob("*.json")]
    assert kept["status"] == 413 and "max payload" in kept["reason"]
    assert [r["request_id"] for r in kept["records"]] == [huge]


def test_a_record_over_the_streams_max_message_size_is_quarantined_and_the_others_are_published(
    stream: Stream, tmp_path: Path
) -> None:
    _add_stream(stream, max_msg_size=4000)  # the stream refuses what the server would carry
    tracker = _tracker(stream, tmp_path)
    ids = [tracker.log({"x": float(i), "t": "s" * 300}, prediction=1) for i in range(40)]  # ~14 kB a batch
    big = tracker.log({"x": -1.0, "t": "b" * 5000}, prediction=1)
    assert tracker.flush(20)
    tracker.close()

    assert sorted(r["request_id"] for r in _stream_records(stream)) == sorted(ids)
    [kept] = [json.loads(p.read_text()) for p in (tmp_path / "spool" / "quarantine").glob("*.json")]
    assert kept["status"] == 413 and "maximum" in kept["reason"] and [r["request_id"] for r in kept["records"]] == [big]


@dataclass
class OwnServer:
    """A ``nats-server`` with JetStream on a free port, its store under ``directory``."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _answers(self.port), 10, lambda: "nats-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[OwnServer]:
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed")
    server = OwnServer(tmp_path / "nats", free_port())
    yield server
    server.stop()


def test_a_server_down_then_back_gets_every_record_once_from_the_spool(
    own_server: OwnServer, stream: Stream, tmp_path: Path
) -> None:
    own_server.start()
    _add_stream(stream, own_server.url)
    transport = JetStreamTransport(own_server.url, stream.service, timeout=1.0)
    tracker = _tracker(stream, tmp_path, sink=None, transport=transport)
    first = [tracker.log({"x": float(i)}, prediction=1) for i in range(50)]
    assert tracker.flush(10)

    own_server.stop()
    second = [tracker.log({"x": float(i)}, prediction=0) for i in range(50, 130)]
    assert not tracker.flush(3)
    assert tracker.stats().server_down and tracker.stats().spooled >= 80

    own_server.start()  # the same store directory: the stream and its first 50 records are kept
    assert tracker.flush(20)
    tracker.close()
    # a batch both buffered by the client and spooled is dropped by the server (Nats-Msg-Id)
    assert [r["request_id"] for r in _stream_records(stream, own_server.url)] == first + second
    assert tracker.stats().sent == 130


def test_sdk_records_reach_the_store_through_mlwatch_consume(
    sqlite_url: str, stream: Stream, consumers: Callable[..., Consuming], tmp_path: Path
) -> None:
    store = register(sqlite_url, stream.service)
    consuming = consumers(sqlite_url, stream)
    consuming.wait_started()
    tracker = _tracker(stream, tmp_path, clock=lambda: 1_700_000_123.0)
    ids = {tracker.log({"x": i * 1.0, "c": "a", "t": "hello"}, prediction=i % 2) for i in range(300)}
    assert tracker.flush(10)
    tracker.close()

    service = store.get_service(stream.service)
    wait_for(lambda: store.count_window(service, 0, 2e9) == 300, 20, consuming.describe)
    found = store.recent_predictions(service, limit=1000, since=0)
    assert {p.request_id for p in found} == ids and {p.ts for p in found} == {1_700_000_123.0}
    assert consuming.stop()["stored"] == 300
    store.close()


def test_the_sink_url_picks_the_transport_and_an_unknown_scheme_lists_the_valid_ones() -> None:
    assert isinstance(sink_transport("nats://127.0.0.1:4222", "credit"), JetStreamTransport)
    assert isinstance(sink_transport("http://127.0.0.1:8000", "credit"), HttpTransport)
    assert sink_transport("nats://10.0.0.1:4222", "credit").target == "nats://10.0.0.1:4222/predictions.credit"  # type: ignore[attr-defined]
    with pytest.raises(
        ValueError, match=r"expected a sink URL of scheme http, https, nats, tls, mqtt, mqtts, got 'kafka://b:9092'"
    ):
        sink_transport("kafka://b:9092", "credit")


def test_a_missing_broker_client_names_the_install_command() -> None:
    with pytest.raises(ImportError, match=r"needs the no_such_client client.*pip install 'mlwatch\[stream\]'"):
        require("no_such_client", "nats:")


def test_a_tracker_with_a_nats_sink_loads_no_broker_client_until_it_sends(tmp_path: Path) -> None:
    code = (
        "import sys; from monitor.sdk import Tracker; "
        f"t = Tracker('svc', sink='nats://127.0.0.1:1', spool_dir={str(tmp_path)!r}, flush_at_exit=False); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nats', 'paho', 'pydantic', 'sqlalchemy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_sink_comes_from_mlwatch_sink_unless_an_argument_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLWATCH_SINK", "nats://127.0.0.1:4222")
    from_env = Tracker("svc", spool_base=tmp_path, flush_at_exit=False)
    given = Tracker("svc", url="http://127.0.0.1:9", spool_base=tmp_path, flush_at_exit=False)
    try:  # each spool is keyed by where its batches go
        assert from_env.spool_dir == default_directory("svc", "nats://127.0.0.1:4222/predictions.svc", tmp_path)
        assert given.spool_dir == default_directory("svc", "http://127.0.0.1:9", tmp_path)
    finally:
        from_env.close()
        given.close()
