"""The worker's check schedule: tumbling windows per service, and re-checks when labels land late.

Windows are aligned on multiples of the service's ``window`` (epoch seconds), so every
worker agrees on them. Each tick, for each service:

- every one of the last ``recheck_windows`` complete windows that has no check yet (the
  newest one, or ones missed while no worker ran) is checked;
- a checked window whose labels were incomplete is checked again when labels were
  received after its last check, at most once per ``recheck_after`` seconds (a quarter of
  the service's window unless set: 15 minutes for hourly windows, and as often, relative to
  its window, for a service with short ones), so quality decay shows up as late labels arrive.

Several workers may run the schedule: a window is checked under a store lease named after
it, and whoever gets the lease looks again whether the check is still due (another worker
may have just finished it). A worker that dies mid-check loses the lease after
``lease_seconds``, and the window is taken up again.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import uuid
from dataclasses import dataclass

from monitor.config import CheckSettings
from monitor.drift.check import CheckRunner
from monitor.drift.reference import sync_configured_references
from monitor.records import CheckRecord, Service
from monitor.store import Store
from monitor.worker import Task, WorkerContext

log = logging.getLogger("mlwatch.drift")
RECHECKS_PER_WINDOW = 4
"""A window whose labels come late is checked again at most this often per window length."""


@dataclass(frozen=True)
class Window:
    """A tumbling window ``[start, end)``."""

    start: float
    end: float


def complete_windows(length: float, now: float, count: int) -> list[Window]:
    """The ``count`` newest windows of ``length`` seconds that ended by ``now``, newest first."""
    last_end = math.floor(now / length) * length
    return [Window(last_end - (i + 1) * length, last_end - i * length) for i in range(count)]


class CheckSchedule:
    """Decides which windows to check now, and runs them."""

    def __init__(
        self,
        store: Store,
        runner: CheckRunner,
        *,
        recheck_windows: int = 6,
        recheck_after: float | None = None,
        lease_seconds: float = 1800.0,
    ) -> None:
        self.store = store
        self.runner = runner
        self.recheck_windows = recheck_windows
        self.recheck_after = recheck_after
        self.lease_seconds = lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def tick(self, now: float) -> list[CheckRecord]:
        """Run every check that is due at ``now``, for every service."""
        done: list[CheckRecord] = []
        for service in self.store.list_services():
            done.extend(self.service_tick(service, now))
        return done

    def service_tick(self, service: Service, now: float) -> list[CheckRecord]:
        """Run the checks of ``service`` that are due at ``now``."""
        length = CheckSettings.of(service).window
        windows = complete_windows(length, now, self.recheck_windows)
        latest = self._latest_checks(service, windows)
        labels_at = self.store.last_label_received_at(service)
        done = []
        for i, window in enumerate(windows):
            check = latest.get((window.start, window.end))
            if self._due(service, window, check, labels_at, now, newest=i == 0):
                ran = self._run_leased(service, window, windows, now, newest=i == 0)
                if ran is not None:
                    done.append(ran)
        return done

    def _run_leased(
        self, service: Service, window: Window, windows: list[Window], now: float, *, newest: bool
    ) -> CheckRecord | None:
        """Check ``window`` (one of ``windows``) unless another worker holds it or has just checked it."""
        lease = f"check:{service.id}:{window.start!r}:{window.end!r}"
        if not self.store.take_lease(lease, self.holder, self.lease_seconds, now):
            return None
        try:
            check = self._latest_checks(service, windows).get((window.start, window.end))  # read again
            if not self._due(service, window, check, self.store.last_label_received_at(service), now, newest=newest):
                return None
            return self.runner.run(service, window.start, window.end, trigger="schedule")
        finally:
            self.store.release_lease(lease, self.holder)

    def _latest_checks(self, service: Service, windows: list[Window]) -> dict[tuple[float, float], CheckRecord]:
        oldest = min(w.start for w in windows)
        latest: dict[tuple[float, float], CheckRecord] = {}
        for check in self.store.list_checks(service, limit=len(windows) * 10):
            if check.window_start >= oldest:
                latest.setdefault((check.window_start, check.window_end), check)
        return latest

    def _due(
        self,
        service: Service,
        window: Window,
        check: CheckRecord | None,
        labels_at: float | None,
        now: float,
        *,
        newest: bool,
    ) -> bool:
        if check is None:
            return newest or window.end > service.created_at
        if check.status != "ok" or check.summary.label_coverage >= 1.0:
            return False
        after = self.recheck_after
        if after is None:
            after = CheckSettings.of(service).window / RECHECKS_PER_WINDOW
        return labels_at is not None and labels_at > check.created_at and now - check.created_at >= after


def check_tasks(ctx: WorkerContext) -> list[Task]:
    """The worker task that runs scheduled checks every ``check_interval`` seconds.

    Each run first loads the references named in the configuration (``reference:``) that
    changed on disk, so editing the file is enough to replace a reference.
    """
    schedule = CheckSchedule(ctx.store, CheckRunner.for_settings(ctx.store, ctx.settings))

    def run(now: float) -> None:
        for problem in sync_configured_references(ctx.settings, ctx.store):
            log.warning("%s", problem)
        for check in schedule.tick(now):
            log.info("check %s of service %s: %s", check.id, check.service_id, check.status)

    return [Task("drift-checks", ctx.settings.check_interval, run)]
