"""``mlwatch worker``: runs periodic tasks (checks, alert evaluation, webhook delivery,
retrain jobs, retention, time partitions) against the store.

Each capability contributes tasks through ``TASK_FACTORIES`` ("module:function" strings;
the function takes a ``WorkerContext`` and returns a list of ``Task``), so the worker
imports heavy libraries only when a task needs them. A failing task is logged and retried
at its next interval; it never stops the others.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.config import Settings
from monitor.store import Store

log = logging.getLogger("mlwatch.worker")

TASK_FACTORIES: list[str] = [
    "monitor.worker:retention_tasks",
    "monitor.alerts.tasks:alert_tasks",
    "monitor.webhooks.tasks:delivery_tasks",
    "retrain.tasks:retrain_tasks",
    "monitor.drift.schedule:check_tasks",
]


@dataclass(frozen=True)
class WorkerContext:
    """What tasks get: configuration, store, a clock, and the stop signal."""

    settings: Settings
    store: Store
    clock: Callable[[], float] = time.time
    stop: threading.Event = field(default_factory=threading.Event)
    name: str = "worker"


@dataclass
class Task:
    """A named function run every ``interval`` seconds."""

    name: str
    interval: float
    run: Callable[[float], None]  # receives the current time
    next_at: float = 0.0


def load_tasks(ctx: WorkerContext, factories: list[str] | None = None) -> list[Task]:
    """Build every task from its factory."""
    tasks: list[Task] = []
    for spec in TASK_FACTORIES if factories is None else factories:
        module, _, attr = spec.partition(":")
        tasks.extend(getattr(importlib.import_module(module), attr)(ctx))
    return tasks


class Worker:
    """Runs due tasks in a loop until stopped."""

    def __init__(self, ctx: WorkerContext, tasks: list[Task]) -> None:
        self.ctx = ctx
        self.tasks = tasks

    def tick(self) -> list[str]:
        """Run every task that is due now; returns the names that ran."""
        ran = []
        for task in self.tasks:
            now = self.ctx.clock()
            if now < task.next_at:
                continue
            try:
                task.run(now)
            except Exception:  # a task's failure must not stop the others
                log.exception("worker task %s failed; retrying in %.0fs", task.name, task.interval)
            task.next_at = now + task.interval
            ran.append(task.name)
        return ran

    def run_forever(self, poll: float = 0.5) -> None:
        """Tick until ``ctx.stop`` is set."""
        while not self.ctx.stop.is_set():
            self.tick()
            self.ctx.stop.wait(poll)


def retention_tasks(ctx: WorkerContext) -> list[Task]:
    """Create time partitions ahead and delete raw rows past their retention period, hourly.

    Partitions come first, at the worker's first tick: rows of a day with no partition wait
    in the default one (stored, but deleted row by row at retention).
    """

    def create_partitions(now: float) -> None:
        created = ctx.store.create_partitions_ahead(now)
        if created:
            log.info("partitions: created %s", ", ".join(created))

    def purge(now: float) -> None:
        deleted = ctx.store.purge(ctx.settings.retention, now)
        deleted["request_ids"] = ctx.store.forget_request_ids(now - ctx.settings.retention.predictions)
        if any(deleted.values()):
            log.info("retention: deleted %s", deleted)

    return [Task("partitions", 3600.0, create_partitions), Task("retention", 3600.0, purge)]
