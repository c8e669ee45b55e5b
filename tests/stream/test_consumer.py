"""``Consumer.handle`` on its own: outcomes per message, without a broker (a real SQLite store)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy.exc import OperationalError

from monitor.ingest import Ingestor
from monitor.records import IngestResult, LabelRecord, PredictionRecord, Service
from monitor.store import Store
from monitor.stream.consumer import MAX_FAILED_DELIVERIES, Ack, Consumer, DeadLetter, Retry
from monitor.stream.messages import Message
from tests.stream.conftest import register


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = register(sqlite_url, "credit")
    yield opened
    opened.close()


def _message(ids: Sequence[str], deliveries: int = 1) -> Message:
    body = {"records": [{"request_id": i, "features": {"x": 1.0}} for i in ids]}
    return Message("predictions.credit", json.dumps(body).encode(), deliveries)


class DownSink:
    """A store that has gone away: every write raises what SQLAlchemy raises then."""

    def add_predictions(self, service: Service, records: Sequence[PredictionRecord]) -> IngestResult:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))

    def add_labels(self, service: Service, records: Sequence[LabelRecord]) -> IngestResult:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))


class BuggySink(DownSink):
    """A store with a bug: writes raise an error nobody planned for."""

    def add_predictions(self, service: Service, records: Sequence[PredictionRecord]) -> IngestResult:
        raise KeyError("oops")


def test_a_store_outage_hands_every_message_back_and_dead_letters_none(store: Store) -> None:
    consumer = Consumer(store.get_service, Ingestor(DownSink()))
    outcomes = consumer.handle(
        [_message(["a"]), _message(["b"]), Message("labels.credit", b'{"request_id": "a", "label": 1}')]
    )
    assert all(isinstance(o, Retry) and "the store is unavailable: OperationalError" in o.reason for o in outcomes)
    assert (consumer.stats.retried, consumer.stats.dead_lettered, consumer.stats.stored) == (3, 0, 0)


def test_an_unexpected_error_is_retried_then_dead_lettered_after_a_few_deliveries(store: Store) -> None:
    consumer = Consumer(store.get_service, Ingestor(BuggySink()))
    early, late = consumer.handle([_message(["a"]), _message(["b"], deliveries=MAX_FAILED_DELIVERIES)])
    assert isinstance(early, Retry)
    assert isinstance(late, DeadLetter) and "internal error (KeyError)" in late.error


def test_one_bad_message_in_a_combined_write_leaves_its_neighbours_stored(store: Store) -> None:
    bad = Message("predictions.credit", b'{"request_id": "bad", "features": {"x": "high"}}')
    consumer = Consumer(store.get_service, Ingestor(store))
    outcomes = consumer.handle([_message(["a", "b"]), bad, _message(["c"]), _message(["a"])])
    assert [type(o) for o in outcomes] == [Ack, DeadLetter, Ack, Ack]
    assert isinstance(outcomes[1], DeadLetter) and outcomes[1].error.startswith(
        "records[0].features.x: expected a number"
    )
    assert (consumer.stats.stored, consumer.stats.duplicates) == (3, 1)


def test_a_message_over_the_batch_limit_is_refused_with_the_limit(store: Store) -> None:
    consumer = Consumer(store.get_service, Ingestor(store), max_records=2)
    (outcome,) = consumer.handle([_message(["a", "b", "c"])])
    assert outcome == DeadLetter("records: at most 2 items per message, got 3; split the batch")


def test_a_subject_that_names_no_kind_is_refused(store: Store) -> None:
    (outcome,) = Consumer(store.get_service, Ingestor(store)).handle([Message("events.credit", b"{}")])
    assert isinstance(outcome, DeadLetter) and "expected predictions.<service> or labels.<service>" in outcome.error
