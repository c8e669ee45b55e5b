"""Worker task factory: evaluate alert rules every few seconds."""

from __future__ import annotations

import logging

from monitor.alerts.engine import AlertEngine
from monitor.worker import Task, WorkerContext

log = logging.getLogger("mlwatch.alerts")
EVALUATE_EVERY = 5.0


def alert_tasks(ctx: WorkerContext) -> list[Task]:
    """One task that ticks the alert engine (config rules are synced into the store first)."""
    engine = AlertEngine(ctx.store, ctx.settings, clock=ctx.clock)

    def evaluate(now: float) -> None:
        result = engine.tick(now)
        if result.changes:
            log.info("alerts: %d changes, %d events over %d rules", result.changes, len(result.events), result.rules)

    return [Task("alerts.evaluate", EVALUATE_EVERY, evaluate)]
