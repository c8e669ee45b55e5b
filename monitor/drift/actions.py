"""Running a drift and quality check now: the one code path of ``POST /v1/services/{service}/checks``.

    >>> check, problems = run_check(store, settings, "credit", actor="alice", trigger="api")
    >>> check.summary["drift_share"]
    0.2

``mlwatch check`` asks the API for it (an operator's role); the worker's scheduled checks
go through ``monitor.drift.schedule``. Evidently is imported when a check first runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.config import CheckSettings, Settings
from monitor.errors import ValidationFailed
from monitor.records import CheckRecord
from monitor.store import Store

if TYPE_CHECKING:
    from monitor.drift.check import CheckRunner

ROLE = "operator"
"""The role that may run a check now (reading checks needs ``viewer``)."""


def run_check(
    store: Store,
    settings: Settings,
    service: str,
    *,
    actor: str,
    trigger: str,
    start: float | None = None,
    end: float | None = None,
    sample_size: int | None = None,
    runner: CheckRunner | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[CheckRecord, list[str]]:
    """Check ``service``'s window ``start``..``end`` (default: its ``window`` ending now), stored and audited.

    The references named in the configuration (``reference:``) that changed on disk are
    loaded first, as the worker does before its checks; each one that could not be is a
    line of the returned problems, which never stop the check.
    """
    from monitor.drift.reference import sync_configured_references

    problems = sync_configured_references(settings, store)
    found = store.get_service(service)
    end = clock() if end is None else end
    start = end - CheckSettings.of(found).window if start is None else start
    if start >= end:
        raise ValidationFailed("start", f"expected a time before end ({end}), got {start}")
    if runner is None:
        from monitor.drift.check import CheckRunner

        runner = CheckRunner.for_settings(store, settings)
    check = runner.run(found, start, end, trigger=trigger, sample_size=sample_size)
    store.audit(actor, "check.run", found.name, {"check_id": check.id})
    return check, problems
