"""The outbox on SQLite and PostgreSQL: idempotent enqueue, leased claims, the delivery log."""

from __future__ import annotations

import threading

from monitor.store import Store
from monitor.store.outbox import AttemptOutcome, OutboxEntry


def _entries(n: int, at: float = 1000.0, receiver: str = "ops") -> list[OutboxEntry]:
    return [OutboxEntry(f"evt_{i}", receiver, "test", f'{{"n":{i}}}', at + i) for i in range(n)]


def test_enqueue_is_idempotent_per_event_and_receiver(store: Store) -> None:
    assert store.enqueue_deliveries(_entries(3)) == 3
    assert store.enqueue_deliveries(_entries(3)) == 0
    assert store.enqueue_deliveries(_entries(1, receiver="slack")) == 1
    assert store.delivery_counts() == {"pending": 4, "delivered": 0, "failed": 0}


def test_rows_written_in_a_rolled_back_transaction_never_exist(store: Store) -> None:
    try:
        with store.write_transaction() as conn:
            store.enqueue_deliveries(_entries(2), conn=conn)
            raise RuntimeError("the change they announce failed")
    except RuntimeError:
        pass
    assert store.list_deliveries() == []


def test_claimed_rows_are_leased_and_counted_as_attempts(store: Store) -> None:
    store.enqueue_deliveries(_entries(5))
    first = store.claim_deliveries(2000.0, limit=3, lease=30)
    assert [d.event_id for d in first] == ["evt_0", "evt_1", "evt_2"]
    assert all(d.attempts == 1 for d in first)
    second = store.claim_deliveries(2001.0, limit=10, lease=30)
    assert [d.event_id for d in second] == ["evt_3", "evt_4"]
    assert store.claim_deliveries(2002.0, limit=10, lease=30) == []
    expired = store.claim_deliveries(2031.0, limit=10, lease=30)
    assert len(expired) == 5 and all(d.attempts == 2 for d in expired)


def test_rows_are_not_claimed_before_their_next_attempt(store: Store) -> None:
    store.enqueue_deliveries(_entries(1))
    claimed = store.claim_deliveries(2000.0, limit=10, lease=30)
    store.record_attempts([AttemptOutcome(claimed[0].id, "pending", 2000.0, 2100.0, 503, "HTTP 503", 4.0)])
    assert store.claim_deliveries(2099.0, limit=10, lease=30) == []
    again = store.claim_deliveries(2100.0, limit=10, lease=30)
    assert again[0].last_status_code == 503 and again[0].last_error == "HTTP 503"


def test_delivery_log_keeps_status_latency_and_error(store: Store) -> None:
    store.enqueue_deliveries(_entries(2))
    a, b = store.claim_deliveries(2000.0, limit=10, lease=30)
    store.record_attempts(
        [
            AttemptOutcome(a.id, "delivered", 2001.0, 2001.0, 200, None, 12.5),
            AttemptOutcome(b.id, "failed", 2001.0, 2001.0, 410, "HTTP 410: gone", 3.0),
        ]
    )
    delivered = store.list_deliveries(status="delivered")
    assert [(d.event_id, d.delivered_at, d.last_latency_ms) for d in delivered] == [("evt_0", 2001.0, 12.5)]
    failed = store.list_deliveries(status="failed")
    assert [(d.event_id, d.last_status_code, d.last_error) for d in failed] == [("evt_1", 410, "HTTP 410: gone")]
    assert store.list_deliveries(event_id="evt_1")[0].attempts == 1


def test_a_late_outcome_does_not_undo_a_delivery(store: Store) -> None:
    store.enqueue_deliveries(_entries(1))
    (row,) = store.claim_deliveries(2000.0, limit=1, lease=1)
    store.record_attempts([AttemptOutcome(row.id, "delivered", 2000.5, 2000.5, 200)])
    store.record_attempts([AttemptOutcome(row.id, "pending", 2003.0, 2010.0, None, "timeout")])
    assert store.list_deliveries()[0].status == "delivered"


def test_concurrent_claimers_never_get_the_same_row(store: Store) -> None:
    store.enqueue_deliveries(_entries(200))
    claimed: list[list[int]] = [[] for _ in range(4)]

    def claim(slot: int) -> None:
        while rows := store.claim_deliveries(5000.0, limit=7, lease=60):
            claimed[slot].extend(r.id for r in rows)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in claimed for i in ids]
    assert len(every) == 200 and len(set(every)) == 200
