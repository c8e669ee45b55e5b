"""Worker tasks: job processes (crash, cancel, timeout) and retrains triggered by alerts."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from typing import IO

from monitor.config import RetrainConfig, Settings
from monitor.records import JobRecord
from monitor.store import Store
from retrain.tasks import AlertTrigger, JobSupervisor
from tests.retrain.scenario import register


def _launcher(code: str):  # type: ignore[no-untyped-def]
    """Starts a real child process running ``code`` in place of a training process."""

    def launch(job: JobRecord, settings: Settings) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
        output = tempfile.TemporaryFile()  # noqa: SIM115 - the supervisor closes it
        return subprocess.Popen([sys.executable, "-c", code], stdout=output, stderr=output), output

    return launch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _supervise(store: Store, code: str, clock: Clock | None = None) -> tuple[JobSupervisor, int]:
    register(store)
    job, _ = store.enqueue_job("retrain", "credit", {"mode": "retrain"}, "t")
    settings = Settings(retrain=(RetrainConfig(service="credit", timeout=30),))
    supervisor = JobSupervisor(store, settings, "w1", launcher=_launcher(code), clock=clock or Clock())
    supervisor.tick(time.time())
    assert store.get_job(job.id).status == "running" and list(supervisor.running) == [job.id]
    return supervisor, job.id


def _until_reaped(supervisor: JobSupervisor) -> None:
    deadline = time.monotonic() + 20
    while supervisor.running and time.monotonic() < deadline:
        supervisor.tick(time.time())
        time.sleep(0.05)


def test_a_crashed_training_process_fails_the_job_with_its_output(store: Store) -> None:
    supervisor, job_id = _supervise(store, "import sys; print('out of memory'); sys.exit(3)")
    _until_reaped(supervisor)
    job = store.get_job(job_id)
    assert job.status == "failed" and "exited with 3: out of memory" in str(job.error)


def test_cancelling_a_running_job_ends_its_process(store: Store) -> None:
    supervisor, job_id = _supervise(store, "import time; time.sleep(60)")
    process = supervisor.running[job_id].process
    store.cancel_job(job_id)
    supervisor.tick(time.time())
    assert process.poll() is not None and not supervisor.running
    assert store.get_job(job_id).status == "cancelled"


def test_a_job_past_its_timeout_is_stopped_and_failed(store: Store) -> None:
    clock = Clock()
    supervisor, job_id = _supervise(store, "import time; time.sleep(60)", clock)
    process = supervisor.running[job_id].process
    clock.now = 31.0
    supervisor.tick(time.time())
    job = store.get_job(job_id)
    assert process.poll() is not None and job.status == "failed" and "timed out" in str(job.error)


def _fire(store: Store, kind: str, service: str = "credit", state: str = "firing") -> int:
    now = time.time()
    values = {
        "fingerprint": f"{kind}-{now}",
        "rule": f"{kind}-rule",
        "kind": kind,
        "service": service,
        "state": state,
        "severity": "warning",
        "labels": {"service": service, "check_id": "7"},
        "value": 0.5,
        "threshold": 0.3,
        "summary": "drifted",
        "started_at": now,
        "fired_at": now,
    }
    with store.write_transaction() as conn:
        return store.insert_alert(conn, values)


def _trigger(store: Store, cooldown: float = 600, cap: int = 3) -> AlertTrigger:
    register(store)
    policy = RetrainConfig(
        service="credit",
        trigger="on_alert",
        retrain_on=("decay", "drift"),
        cooldown=cooldown,
        daily_cap=cap,
        min_labelled_rows=0,  # these alerts come without traffic; waiting for rows is tests/retrain/test_onset.py's
    )
    return AlertTrigger(store, Settings(retrain=(policy,)))


def test_a_firing_drift_alert_queues_one_retrain_within_the_cooldown(store: Store) -> None:
    trigger = _trigger(store)
    alert_id = _fire(store, "drift_share")
    job = trigger.consider("credit", time.time())
    assert job is not None and job.params["trigger"] == "drift" and job.params["alert_id"] == alert_id
    assert job.params["check_id"] == 7 and job.created_by == "alert:drift_share-rule"
    store.finish_job(job.id, "failed", error="x")
    assert trigger.consider("credit", time.time()) is None


def test_decay_alerts_trigger_until_the_daily_cap(store: Store) -> None:
    trigger = _trigger(store, cooldown=0, cap=2)
    _fire(store, "quality_decay")
    for _ in range(2):
        job = trigger.consider("credit", time.time())
        assert job is not None and job.params["trigger"] == "decay"
        store.finish_job(job.id, "succeeded")
    assert trigger.consider("credit", time.time()) is None


def test_other_alerts_and_manual_policies_trigger_nothing(store: Store) -> None:
    trigger = _trigger(store, cooldown=0)
    _fire(store, "latency")
    _fire(store, "drift_share", state="resolved")
    assert trigger.consider("credit", time.time()) is None
    manual = AlertTrigger(store, Settings(retrain=(RetrainConfig(service="credit"),)))
    _fire(store, "drift_share")
    manual.tick(time.time())
    assert store.list_jobs(service="credit") == []


def test_a_zero_daily_cap_disables_automatic_retrains(store: Store) -> None:
    trigger = _trigger(store, cooldown=0, cap=0)
    _fire(store, "feature_drift")
    assert trigger.consider("credit", time.time()) is None
