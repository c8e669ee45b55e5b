"""Worker task factory: deliver the webhook outbox every second, and keep its log bounded."""

from __future__ import annotations

import logging

from monitor.webhooks.delivery import Deliverer
from monitor.worker import Task, WorkerContext

log = logging.getLogger("mlwatch.webhooks")
DELIVER_EVERY = 1.0
PURGE_EVERY = 3600.0
DELIVERY_LOG_KEPT = 30 * 86400.0
"""How long finished deliveries and attempts stay in the log (pending ones stay until done)."""


def delivery_tasks(ctx: WorkerContext) -> list[Task]:
    """One task that drains whatever is due in the outbox, one that deletes the log's old rows hourly."""
    deliverer = Deliverer(ctx.store, ctx.settings, clock=ctx.clock)

    def deliver(now: float) -> None:
        made = deliverer.drain(budget_seconds=5.0)  # a backlog drains over ticks; other tasks still run
        if made:
            log.info("webhooks: %d delivery attempts; outbox now %s", made, ctx.store.delivery_counts())

    def purge(now: float) -> None:
        deleted = ctx.store.purge_delivery_log(now - DELIVERY_LOG_KEPT)
        if any(deleted.values()):
            log.info("webhooks: deleted from the delivery log %s", deleted)

    return [Task("webhooks.deliver", DELIVER_EVERY, deliver), Task("webhooks.purge", PURGE_EVERY, purge)]
