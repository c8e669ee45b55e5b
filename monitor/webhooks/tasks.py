"""Worker task factory: deliver the webhook outbox every second."""

from __future__ import annotations

import logging

from monitor.webhooks.delivery import Deliverer
from monitor.worker import Task, WorkerContext

log = logging.getLogger("mlwatch.webhooks")
DELIVER_EVERY = 1.0


def delivery_tasks(ctx: WorkerContext) -> list[Task]:
    """One task that drains whatever is due in the outbox."""
    deliverer = Deliverer(ctx.store, ctx.settings, clock=ctx.clock)

    def deliver(now: float) -> None:
        made = deliverer.drain(budget_seconds=5.0)  # a backlog drains over ticks; other tasks still run
        if made:
            log.info("webhooks: %d delivery attempts; outbox now %s", made, ctx.store.delivery_counts())

    return [Task("webhooks.deliver", DELIVER_EVERY, deliver)]
