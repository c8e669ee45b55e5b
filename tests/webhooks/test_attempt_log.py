"""Every delivery attempt is kept (number, start, status, latency, error), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from monitor.config import Settings, WebhookConfig
from monitor.errors import NotFound
from monitor.store import Store
from monitor.store.outbox import ATTEMPTS_LISTED, AttemptOutcome, OutboxEntry
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit
from tests.webhooks.receiver import SECRET, Clock, Receiver, Step


def _settings(url: str) -> Settings:
    hook = WebhookConfig(name="ops", url=url, secret_env="HOOK_SECRET", timeout=2.0, backoff_initial=1.0)
    return Settings(webhooks=(hook,))


def _retry_until_done(store: Store, settings: Settings, clock: Clock, turns: int = 10) -> None:
    deliverer = Deliverer(store, settings, clock=clock, environ={"HOOK_SECRET": SECRET}, rng=lambda: 0.5)
    for _ in range(turns):
        deliverer.run_once()
        clock.advance(5.0)
    deliverer.close()


def _claim_and_fail(store: Store, times: int, at: float = 2000.0) -> int:
    """Claim the one pending row ``times`` times, each try answered 503; returns its id."""
    for i in range(times):
        (row,) = store.claim_deliveries(at + i, limit=1, lease=30)
        store.record_attempts([AttemptOutcome(row.id, "pending", at + i, at + i, 503, "HTTP 503", 1.0, row.attempts)])
    return row.id


def test_two_503s_then_a_200_leave_three_attempts_in_the_log(store: Store, receiver: Receiver) -> None:
    receiver.script(Step(503), Step(503), Step(200))
    settings = _settings(receiver.url)
    clock = Clock()
    start = clock.now
    emit(store, settings, "test", {})
    _retry_until_done(store, settings, clock)
    (logged,) = store.list_deliveries()
    assert (logged.status, logged.attempts, logged.last_status_code) == ("delivered", 3, 200)
    log = logged.attempt_log
    assert [(a.attempt, a.status_code) for a in log] == [(1, 503), (2, 503), (3, 200)]
    assert [a.error for a in log] == ["HTTP 503: ok", "HTTP 503: ok", None]
    assert start <= log[0].started_at < log[1].started_at < log[2].started_at <= clock.now
    assert all(a.latency_ms is not None and a.latency_ms > 0 for a in log)
    assert store.get_delivery(logged.id).attempt_log == log


def test_an_unreachable_receiver_logs_each_attempt_without_a_status(store: Store) -> None:
    settings = _settings("http://127.0.0.1:9/hook")  # discard port: nothing listens
    emit(store, settings, "test", {})
    _retry_until_done(store, settings, Clock(), turns=2)
    log = store.list_deliveries()[0].attempt_log
    assert [(a.attempt, a.status_code) for a in log] == [(1, None), (2, None)]
    assert all(a.error and a.error.startswith("ConnectError") for a in log)


def test_attempt_errors_are_kept_to_a_bounded_length(store: Store) -> None:
    store.enqueue_deliveries([OutboxEntry("evt_1", "ops", "test", "{}", 1000.0)])
    (row,) = store.claim_deliveries(2000.0, limit=1, lease=30)
    store.record_attempts([AttemptOutcome(row.id, "pending", 2001.0, 2002.0, None, "x" * 50_000, 5.0)])
    (attempt,) = store.get_delivery(row.id).attempt_log
    assert (attempt.attempt, attempt.started_at) == (1, 2001.0)  # number and start taken from the row and outcome
    assert attempt.error == "x" * 1000


def test_an_outcome_for_a_deleted_delivery_is_dropped_and_the_others_recorded(store: Store) -> None:
    store.enqueue_deliveries([OutboxEntry("evt_1", "ops", "test", "{}", 1000.0)])
    (row,) = store.claim_deliveries(2000.0, limit=1, lease=30)
    gone = AttemptOutcome(row.id + 1000, "delivered", 2001.0, 2001.0, 200, None, 1.0, attempt=1)
    store.record_attempts([gone, AttemptOutcome(row.id, "delivered", 2001.0, 2001.0, 200, None, 1.0, attempt=1)])
    assert [a.status_code for a in store.get_delivery(row.id).attempt_log] == [200]


def test_a_list_shows_the_newest_attempts_and_one_delivery_shows_all(store: Store) -> None:
    store.enqueue_deliveries([OutboxEntry("evt_1", "ops", "test", "{}", 1000.0)])
    delivery_id = _claim_and_fail(store, ATTEMPTS_LISTED + 5)
    listed = store.list_deliveries()[0].attempt_log
    assert [a.attempt for a in listed] == list(range(6, ATTEMPTS_LISTED + 6))
    assert [a.attempt for a in store.get_delivery(delivery_id).attempt_log] == list(range(1, ATTEMPTS_LISTED + 6))


def test_an_unknown_delivery_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="unknown delivery 42; list deliveries with GET /v1/webhooks/deliveries"):
        store.get_delivery(42)


def test_purge_deletes_old_finished_deliveries_with_their_attempts_and_keeps_pending_ones(store: Store) -> None:
    store.enqueue_deliveries([OutboxEntry(f"evt_{i}", "ops", "test", "{}", 1000.0 + i) for i in range(3)])
    old, recent, pending = store.claim_deliveries(1100.0, limit=3, lease=30)
    store.record_attempts(
        [
            AttemptOutcome(old.id, "delivered", 1100.0, 1100.0, 200, None, 1.0),
            AttemptOutcome(recent.id, "failed", 1100.0, 1100.0, 410, "HTTP 410", 1.0),
            AttemptOutcome(pending.id, "pending", 1100.0, 9000.0, 503, "HTTP 503", 1.0),
        ]
    )
    assert store.purge_delivery_log(before=1000.5) == {"webhook_deliveries": 1, "webhook_attempts": 1}
    assert sorted(d.event_id for d in store.list_deliveries()) == ["evt_1", "evt_2"]
    assert [len(d.attempt_log) for d in store.list_deliveries()] == [1, 1]
    assert store.purge_delivery_log(before=5000.0) == {"webhook_deliveries": 1, "webhook_attempts": 2}
    (kept,) = store.list_deliveries()
    assert (kept.event_id, kept.status, kept.attempt_log) == ("evt_2", "pending", ())
