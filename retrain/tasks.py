"""Worker tasks of retraining: run queued jobs, trigger retrains on alerts, notice alias changes.

``retrain_tasks`` is listed in ``monitor.worker.TASK_FACTORIES``. Jobs run in a child
process of the worker (``python -m retrain.job``), never in the API or dashboard, so a
cancel or a timeout ends the process; the worker beats each running job's heartbeat, and
jobs of a worker that died are failed by whichever worker notices first.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from monitor.config import CheckSettings, RetrainConfig, Settings
from monitor.errors import MlwatchError
from monitor.records import JobRecord, Service
from monitor.store import Store
from monitor.worker import Task, WorkerContext
from retrain.actions import RETRAIN, request_retrain
from retrain.episodes import Episode, Episodes
from retrain.notify import EXTERNAL_EVENT, emit
from retrain.onset import LOOKBACK_WINDOWS, episode_onset
from retrain.records import AliasChange
from retrain.registry import CHAMPION, PREVIOUS, OnExternal, Registry, model_name

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("mlwatch.retrain")

HEARTBEAT_TIMEOUT = 90.0
LOG_TAIL = 4000


def retrain_tasks(ctx: WorkerContext) -> list[Task]:
    """The worker's retrain tasks: job supervision (1 s), alert triggers (15 s), alias watch (30 s),
    the rollout stages' policy (15 s, or ``check_interval`` where shorter: a canary's breach is
    rolled back within a check of the traffic that shows it)."""
    supervisor = JobSupervisor(ctx.store, ctx.settings, ctx.name)
    return [
        Task("retrain-jobs", 1.0, supervisor.tick),
        Task("retrain-triggers", 15.0, AlertTrigger(ctx.store, ctx.settings).tick),
        Task("alias-watch", 30.0, AliasWatcher(ctx.store, ctx.settings).tick),
        Task("stage-review", min(15.0, ctx.settings.check_interval), StageReview(ctx.store, ctx.settings).tick),
    ]


@dataclass
class RunningJob:
    """A job's child process and what is needed to stop it."""

    job_id: int
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    deadline: float


Launcher = Callable[[JobRecord, Settings], tuple[subprocess.Popen[bytes], IO[bytes]]]


def launch_process(job: JobRecord, settings: Settings) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start ``python -m retrain.job ID`` with the settings on stdin; output goes to a temp file."""
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the job ends (JobSupervisor)
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "retrain.job", str(job.id)], stdin=subprocess.PIPE, stdout=output, stderr=output, env=env
    )
    assert process.stdin is not None
    process.stdin.write(settings.model_dump_json(by_alias=True).encode())
    process.stdin.close()
    return process, output


class JobSupervisor:
    """Claims queued retrain jobs and watches their processes (cancel, timeout, crash)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        worker: str,
        *,
        launcher: Launcher = launch_process,
        clock: Callable[[], float] = time.monotonic,
        max_running: int = 1,
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        self.launcher = launcher
        self.clock = clock
        self.max_running = max_running
        self.running: dict[int, RunningJob] = {}

    def tick(self, now: float) -> None:
        """Watch running jobs, fail abandoned ones, start queued ones."""
        for job_id in list(self.running):
            self._watch(self.running[job_id])
        failed = self.store.fail_stale_jobs(HEARTBEAT_TIMEOUT, now=now)
        if failed:
            log.warning("failed abandoned jobs %s", failed)
        while len(self.running) < self.max_running:
            job = self.store.claim_job(self.worker, (RETRAIN,), now=now)
            if job is None:
                break
            self._start(job)

    def _start(self, job: JobRecord) -> None:
        timeout = self.settings.retrain_policy(str(job.service)).timeout
        process, output = self.launcher(job, self.settings)
        self.running[job.id] = RunningJob(job.id, process, output, self.clock() + timeout)
        log.info("job %s (%s of %s) started as process %s", job.id, job.params.get("mode"), job.service, process.pid)

    def _watch(self, running: RunningJob) -> None:
        code = running.process.poll()
        if code is not None:
            self._reap(running, code)
            return
        job = self.store.get_job(running.job_id)
        if job.cancel_requested:
            self._end(running, "cancelled", "cancelled by an operator while running")
        elif self.clock() > running.deadline:
            self._end(running, "failed", "timed out (retrain timeout reached); the training process was stopped")
        else:
            self.store.job_progress(running.job_id)

    def _reap(self, running: RunningJob, code: int) -> None:
        del self.running[running.job_id]
        job = self.store.get_job(running.job_id)
        if job.active:  # the process died before recording an outcome
            self.store.finish_job(
                job.id, "failed", error=f"training process exited with {code}: {_tail(running.output)}"
            )
        running.output.close()

    def _end(self, running: RunningJob, status: str, reason: str) -> None:
        running.process.terminate()
        try:
            running.process.wait(10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
        self.store.job_progress(running.job_id, line=reason)
        self.store.finish_job(running.job_id, status, error=reason)
        del self.running[running.job_id]
        running.output.close()


def _tail(output: IO[bytes]) -> str:
    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - LOG_TAIL))
    return output.read().decode("utf-8", "replace").strip()


class AlertTrigger:
    """Queues a retrain when a drift or decay episode opens for a service whose policy says ``on_alert``
    (at most one per episode; see ``retrain.episodes``), within the cooldown and the daily cap."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.episodes = Episodes(store, settings)
        self._onsets: dict[int, float] = {}  # by episode id: found once, kept while it waits for labels
        self._waiting: set[int] = set()  # episodes whose wait was logged at INFO already

    def tick(self, now: float) -> None:
        """Check every ``on_alert`` service once."""
        for policy in self.settings.retrain:
            if policy.trigger == "on_alert":
                self.consider(policy.service, now)

    def consider(self, service: str, now: float) -> JobRecord | None:
        """Queue a retrain of ``service`` for its open episode if the episode, cooldown and cap allow one."""
        policy = self.settings.retrain_policy(service)
        episode = self.episodes.open(service, policy)
        if episode is None:
            return None
        held = self.episodes.held(episode, now)
        if held is not None:
            log.debug("retrain of %s not triggered: %s", service, held)
            return None
        recent = self.store.list_jobs(service=service, kind=RETRAIN, since=now - 86400, limit=1000)
        if any(j.created_at >= now - policy.cooldown for j in recent):
            return None
        automatic = [j for j in recent if j.params.get("trigger") != "manual"]
        if len(automatic) >= policy.daily_cap:
            log.info("retrain of %s not triggered: daily cap of %d reached", service, policy.daily_cap)
            return None
        since = self._onset(episode, policy, now)
        if since is None:
            return None
        return self._queue(episode, since)

    def _onset(self, episode: Episode, policy: RetrainConfig, now: float) -> float | None:
        """Where the episode's change began (``retrain.onset``), once ``policy.min_labelled_rows``
        labelled rows from after it are stored; None while the retrain waits for them."""
        found = self.store.get_service(episode.service)
        lookback = LOOKBACK_WINDOWS * CheckSettings.of(found).window
        since = self._onsets.get(episode.id)
        if since is None:
            since = self._onsets[episode.id] = episode_onset(self.store, found, episode, lookback)
            log.info("episode %s of %s: the change began at %.0f", episode.id, episode.service, since)
        labelled = self.store.count_labelled(found, since, now + 1) if policy.min_labelled_rows else 0
        if labelled < policy.min_labelled_rows:
            level = logging.DEBUG if episode.id in self._waiting else logging.INFO
            self._waiting.add(episode.id)
            log.log(
                level, "retrain of %s waits for labelled rows from after the onset of episode %s (%d of %d)",
                episode.service, episode.id, labelled, policy.min_labelled_rows,
            )  # fmt: skip
            return None
        return since

    def _queue(self, episode: Episode, since: float) -> JobRecord | None:
        alert, trigger = episode.latest()
        extra: dict[str, object] = {
            "alert_id": alert.id,
            "alert_rule": alert.rule,
            "episode": episode.id,
            "episode_alerts": [a.id for a in episode.alerts],
            "since": since,
        }
        if alert.labels.get("check_id"):
            extra["check_id"] = int(alert.labels["check_id"])
        try:
            job, _ = request_retrain(
                self.store, self.settings, episode.service, actor=f"alert:{alert.rule}", trigger=trigger, extra=extra
            )
        except MlwatchError as exc:
            log.warning("retrain of %s not triggered: %s", episode.service, exc)
            return None
        log.info("retrain job %s of %s queued for episode %s (%s)", job.id, episode.service, episode.id, trigger)
        return job


class AliasWatcher:
    """Records alias changes made outside mlwatch (MLflow UI or API) in the alias history,
    keeps the replaced champion as ``previous`` and announces each change as a
    ``model.alias_changed_externally`` event, queued in the transaction that records it."""

    def __init__(self, store: Store, settings: Settings, registry: Registry | None = None) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry

    def tick(self, now: float) -> None:
        """Compare each service's registry aliases with the last recorded ones."""
        services = [s for s in self.store.list_services() if s.model_name]
        if not services:
            return
        registry = self.registry or Registry.from_settings(self.settings, self.store)
        for service in services:
            for change in registry.notice_external_changes(service, on_change=self._announcer(service)):
                log.warning(
                    "alias %s of %s moved outside mlwatch: %s -> %s",
                    change.alias,
                    service.name,
                    change.from_version,
                    change.to_version,
                )

    def _announcer(self, service: Service) -> OnExternal:
        def announce(conn: Connection, changes: list[AliasChange], after: dict[str, str]) -> None:
            for change in changes:
                data = {
                    "service": service.name,
                    "model": model_name(service),
                    "alias": change.alias,
                    "from": change.from_version,
                    "to": change.to_version,
                    "champion": after.get(CHAMPION),
                    "previous": after.get(PREVIOUS),
                    "source": "external",
                    "actor": change.actor,
                }
                emit(self.store, self.settings, EXTERNAL_EVENT, data, severity="warning", conn=conn)

        return announce


class StageReview:
    """Applies the rollout policy to each active stage every 15 s (``retrain.stages.review``):
    ends a shadow that has enough labelled rows or ran too long, rolls back a canary that
    breached a guard, and promotes a challenger that proved itself."""

    def __init__(self, store: Store, settings: Settings, registry: Registry | None = None) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry

    def tick(self, now: float) -> None:
        """Review the active stage of every service that has one."""
        from retrain.stages import review

        for service in self.store.list_services():
            if self.store.active_stage(service) is None:
                continue
            try:
                ended = review(self.store, self.settings, service, registry=self.registry, now=now)
            except MlwatchError:
                log.exception("could not review the rollout stage of %s; will try again", service.name)
                continue
            if ended is not None:
                log.warning("%s of %s ended %s: %s", ended.stage, service.name, ended.status, ended.reason)
