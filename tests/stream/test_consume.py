"""``mlwatch consume`` against the real NATS JetStream server and a real store (a process each time)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from monitor.ingest import Ingestor
from monitor.records import PredictionRecord, StoredPrediction
from monitor.store import Store
from tests.stream.conftest import Consuming, Stream, nats_call, register, wait_for


def _records(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"request_id": f"r{i}", "features": {"x": i * 0.5, "c": f"k{i % 3}"}, "prediction": i % 2}
        for i in range(start, start + count)
    ]


def _stored(store: Store, service: str) -> list[StoredPrediction]:
    return store.recent_predictions(store.get_service(service), limit=100_000, since=0)


def _batches(total: int, sizes: list[int]) -> list[bytes]:
    """``total`` records as messages of the given sizes in turn; size 1 is a record alone, not a batch."""
    bodies, start, turn = [], 0, 0
    while start < total:
        size = min(sizes[turn % len(sizes)], total - start)
        records = _records(start, size)
        bodies.append(json.dumps(records[0] if size == 1 else {"records": records}).encode())
        start, turn = start + size, turn + 1
    return bodies


def test_a_thousand_records_in_mixed_batches_are_stored_once_and_labels_join_them(
    store_url: str, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    store = register(store_url, stream.service)
    consuming = consumers(store_url, stream, "--batch", "25")
    consuming.wait_started()
    stream.publish(f"predictions.{stream.service}", _batches(1000, [1, 7, 50, 200, 3, 1, 120]))
    labels = [{"request_id": f"r{i}", "label": i % 2} for i in range(1000)]
    bodies = [json.dumps({"labels": labels[i : i + 99]}).encode() for i in range(0, 990, 99)]
    stream.publish(f"labels.{stream.service}", bodies + [json.dumps(label).encode() for label in labels[990:]])

    wait_for(lambda: sum(p.has_label for p in _stored(store, stream.service)) == 1000, 20, consuming.describe)
    stats = consuming.stop()
    found = _stored(store, stream.service)
    assert sorted(p.request_id for p in found) == sorted(f"r{i}" for i in range(1000))
    assert all(p.label == int(p.request_id[1:]) % 2 for p in found)
    assert stats["stored"] == 2000 and stats["duplicates"] == 0 and stats["dead_lettered"] == 0
    assert stats["consumed"] == len(_batches(1000, [1, 7, 50, 200, 3, 1, 120])) + 20
    store.close()


def test_a_message_published_twice_is_stored_once(
    sqlite_url: str, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    store = register(sqlite_url, stream.service)
    body = json.dumps({"records": _records(0, 10)}).encode()
    consuming = consumers(sqlite_url, stream)
    consuming.wait_started()
    stream.publish(f"predictions.{stream.service}", [body, body])

    wait_for(lambda: _consumed(consuming) == 2, 20, consuming.describe)
    stats = consuming.stop()
    assert len(_stored(store, stream.service)) == 10
    assert (stats["stored"], stats["duplicates"]) == (10, 10)
    store.close()


def _consumed(consuming: Consuming) -> int:
    """Messages the consumer's batch lines count so far."""
    lines = [line for line in consuming.log.read_text().splitlines() if " messages: " in line]
    return sum(int(line.split(" messages: ")[0].rsplit(" ", 1)[1]) for line in lines)


def test_a_batch_committed_but_never_acknowledged_is_redelivered_and_stores_nothing_twice(
    sqlite_url: str, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    """A consumer that stored a batch and died before acknowledging it: the messages come back
    to the next consumer of the same durable name, which finds every record stored already."""
    store = register(sqlite_url, stream.service)
    bodies = [json.dumps({"records": _records(i * 5, 5)}).encode() for i in range(4)]

    async def died_after_commit(js: Any) -> int:
        from nats.js.api import ConsumerConfig

        await js.add_stream(name=stream.name, subjects=stream.subjects)
        await js.add_consumer(stream.name, ConsumerConfig(durable_name="shared", ack_wait=1.0))
        for body in bodies:
            await js.publish(f"predictions.{stream.service}", body)
        sub = await js.pull_subscribe_bind(durable="shared", stream=stream.name)
        fetched = await sub.fetch(4, timeout=5)
        for msg in fetched:  # stored, then the process dies: no ack
            Ingestor(store).predictions(store.get_service(stream.service), _decoded(msg.data))
        return len(fetched)

    assert nats_call(stream.url, died_after_commit) == 4
    consuming = consumers(sqlite_url, stream, "--durable", "shared")
    wait_for(lambda: _consumed(consuming) == 4, 20, consuming.describe)
    stats = consuming.stop()
    assert len(_stored(store, stream.service)) == 20
    assert (stats["stored"], stats["duplicates"], stats["redelivered"]) == (0, 20, 4)
    store.close()


def _decoded(body: bytes) -> list[PredictionRecord]:
    from monitor.server.wire import decode_predictions

    return decode_predictions(body)


BAD = [
    ("predictions", b'{"records": [{"request_id": "m1", "features": {"x": 1', "not valid JSON"),
    ("predictions", b'{"request_id": "n1", "features": {"x": NaN}}', "records[0].features.x: expected a finite number"),
    ("unknown", b'{"request_id": "u1", "features": {"x": 1}}', "unknown service"),
    ("predictions", b'{"request_id": "w1", "features": {"x": "high"}}', "expected a number for a numerical feature"),
    ("predictions", b'{"request_id": "z1", "features": {"t": "a\\u0000b"}}', "NUL"),
    ("predictions", b'{"records": [{"request_id": "e1", "latency_ms": -3}]}', "records[0].latency_ms"),
    ("labels", b'{"labels": [{"request_id": "g1", "label": null}]}', "labels[0].label: expected a label"),
]


def test_bad_messages_go_to_the_dead_letter_subject_and_the_good_ones_around_them_are_stored(
    sqlite_url: str, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    """All published before the consumer starts, so that they come in one fetch and the good
    ones are written together with the bad ones until the write is refused."""
    store = register(sqlite_url, stream.service)
    nats_call(stream.url, lambda js: js.add_stream(name=stream.name, subjects=stream.subjects))
    for n, (kind, body, _) in enumerate(BAD):
        good = json.dumps({"records": _records(n * 10, 3)}).encode()
        stream.publish(f"predictions.{stream.service}", [good])
        subject = f"predictions.{stream.unknown}" if kind == "unknown" else f"{kind}.{stream.service}"
        stream.publish(subject, [body])
    stream.publish(f"labels.{stream.service}", [json.dumps({"request_id": "r0", "label": 1}).encode()])
    consuming = consumers(sqlite_url, stream, "--batch", "50")
    consuming.wait_started()  # it has created the stream of dead letters
    letters = stream.dead_letters(len(BAD))
    wait_for(lambda: _consumed(consuming) == 2 * len(BAD) + 1, 20, consuming.describe)
    stats = consuming.stop()
    assert len(letters) == len(BAD), consuming.describe()
    assert f" {2 * len(BAD) + 1} messages: " in consuming.log.read_text()  # one batch
    for letter, (kind, body, error) in zip(letters, BAD, strict=True):
        service = stream.unknown if kind == "unknown" else stream.service
        kind = "predictions" if kind == "unknown" else kind
        assert letter.subject == f"mlwatch.dead.{kind}.{service}"
        assert letter.data == body
        assert error in letter.headers["Mlwatch-Error"], letter.headers
    stored = _stored(store, stream.service)
    assert len(stored) == 3 * len(BAD) and {p.request_id for p in stored if p.has_label} == {"r0"}
    assert stats["dead_lettered"] == len(BAD) and stats["stored"] == 3 * len(BAD) + 1


def test_a_durable_consumer_is_not_reused_for_other_subjects(
    sqlite_url: str, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    register(sqlite_url, stream.service).close()
    first = consumers(sqlite_url, stream, "--durable", "picky", "--subject", f"predictions.{stream.service}")
    first.wait_started()
    first.stop()
    second = consumers(sqlite_url, stream, "--durable", "picky", "--subject", f"labels.{stream.service}")
    second.process.wait(20)
    assert second.process.returncode == 1
    assert f"reads predictions.{stream.service}, not labels.{stream.service}" in second.log.read_text()
