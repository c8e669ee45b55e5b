"""The worker's webhook tasks: delivery, and a delivery log that does not grow forever."""

from __future__ import annotations

from monitor.config import Settings
from monitor.store import Store
from monitor.store.outbox import AttemptOutcome, OutboxEntry
from monitor.webhooks.tasks import DELIVERY_LOG_KEPT, delivery_tasks
from monitor.worker import Worker, WorkerContext

NOW = 1_800_000_000.0


def test_the_worker_deletes_finished_deliveries_older_than_the_log_keeps(store: Store) -> None:
    old, new = NOW - DELIVERY_LOG_KEPT - 60, NOW - 60
    store.enqueue_deliveries(
        [OutboxEntry("evt_old", "ops", "test", "{}", old), OutboxEntry("evt_new", "ops", "test", "{}", new)]
    )
    for row in store.claim_deliveries(NOW, limit=2, lease=30):
        store.record_attempts([AttemptOutcome(row.id, "delivered", row.created_at, row.created_at, 200, None, 1.0)])
    ctx = WorkerContext(Settings(), store, clock=lambda: NOW)
    assert Worker(ctx, delivery_tasks(ctx)).tick() == ["webhooks.deliver", "webhooks.purge"]
    (kept,) = store.list_deliveries()
    assert kept.event_id == "evt_new" and [a.status_code for a in kept.attempt_log] == [200]
