"""``mlwatch retrain``, ``promote`` and ``rollback`` through a real server (no worker: jobs stay queued)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.store import Store
from retrain.registry import Registry, make_client
from tests.conftest import RunningServer, start_server
from tests.retrain.scenario import register


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str) -> Iterator[RunningServer]:
    """A server on a store with the service ``credit`` and an MLflow store of its own."""
    store = Store.open(sqlite_url)
    register(store)
    store.close()
    running = start_server(tmp_path, sqlite_url, {"MLWATCH_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    yield running
    running.stop()


def _mlwatch(api: RunningServer, *args: str, token: str | None = None) -> Result:
    env = {"MLWATCH_URL": api.url, "MLWATCH_TOKEN": token or api.token, "MLWATCH_CONFIG": None}
    return CliRunner().invoke(main, list(args), env=env, prog_name="mlwatch")


def test_retrain_queues_once_and_wait_says_when_no_worker_ran_it(api: RunningServer) -> None:
    first = _mlwatch(api, "retrain", "credit", "--fine-tune")
    assert first.exit_code == 0 and first.stdout.strip() == "job 1 queued for credit"
    assert first.stderr == f"mlwatch retrain: API {api.url} (MLWATCH_URL)\n"
    waited = _mlwatch(api, "retrain", "credit", "--wait", "--timeout", "0")
    assert waited.exit_code == 1
    assert "job 1 already queued" in waited.output and "is `mlwatch worker` running?" in waited.output
    store = Store.open(api.store_url)
    try:
        job = store.get_job(1)
    finally:
        store.close()
    assert (job.params["mode"], job.created_by) == ("fine_tune", "bootstrap")  # the token's name, not "cli"


def _run_job_elsewhere(store: Store) -> None:
    """What the worker's job process does to the store: claim, two steps, success."""
    deadline = time.monotonic() + 30
    job = store.claim_job("w1")
    while job is None and time.monotonic() < deadline:
        time.sleep(0.05)
        job = store.claim_job("w1")
    assert job is not None
    time.sleep(1.5)  # longer than the command's poll, so that it sees each step
    store.job_progress(job.id, progress=0.2, line="building the training data (retrain)")
    time.sleep(1.5)
    store.job_progress(job.id, progress=0.6, line="logging and registering the model")
    time.sleep(1.5)
    store.finish_job(job.id, "succeeded", result={"version": "1", "decision": "promote"})


def test_retrain_wait_shows_the_job_progress_and_log_lines_as_they_come(api: RunningServer) -> None:
    store = Store.open(api.store_url)
    worker = threading.Thread(target=_run_job_elsewhere, args=(store,))
    worker.start()
    try:
        waited = _mlwatch(api, "retrain", "credit", "--wait", "--timeout", "30")
    finally:
        worker.join()
        store.close()
    assert waited.exit_code == 0, waited.output
    shown = waited.stderr.splitlines()[1:]  # after the line naming the API
    assert shown[0] == "job 1 running on w1" and shown[-1] == "job 1 succeeded"
    steps = [re.fullmatch(r"\[ *(\d+)%\] \d\d:\d\d:\d\d (.+)", line) for line in shown[1:-1]]
    assert all(steps), shown
    lines = [m.group(2) for m in steps if m]
    assert lines == ["building the training data (retrain)", "logging and registering the model"]
    percents = [int(m.group(1)) for m in steps if m]
    assert percents == sorted(percents) and percents[0] >= 20
    assert waited.stdout.startswith("job 1 queued for credit\n") and '"decision": "promote"' in waited.stdout


def test_promote_and_rollback_report_bad_input_without_a_traceback(api: RunningServer) -> None:
    unknown = _mlwatch(api, "promote", "nope", "1")
    assert unknown.exit_code == 1 and "answered 404: unknown service 'nope'" in unknown.stderr
    malformed = _mlwatch(api, "promote", "credit", "one")
    assert malformed.exit_code == 1 and "answered 422: version: expected a registered model version" in malformed.stderr
    nothing = _mlwatch(api, "rollback", "credit")
    assert nothing.exit_code == 1 and "no 'previous' version to roll back to" in nothing.stderr
    assert "Traceback" not in unknown.output + malformed.output + nothing.output


def test_promote_and_rollback_move_the_aliases_audited_with_the_token_and_reason(
    api: RunningServer, tmp_path: Path
) -> None:
    mlflow = make_client(f"sqlite:///{tmp_path / 'm.db'}")
    mlflow.create_registered_model("credit")
    for _ in range(2):
        mlflow.create_model_version("credit", str(tmp_path))
    assert _mlwatch(api, "promote", "credit", "1").exit_code == 0
    promoted = _mlwatch(api, "promote", "credit", "2", "--reason", "beats 1 on f1")
    assert promoted.exit_code == 0, promoted.output
    assert '"champion": "2", "previous": "1"' in promoted.stdout
    rolled = _mlwatch(api, "rollback", "credit", "--reason", "latency")
    assert rolled.exit_code == 0, rolled.output
    assert '"champion": "1", "previous": "2"' in rolled.stdout
    store = Store.open(api.store_url)
    try:
        history = Registry(mlflow, store).history("credit", limit=10)
    finally:
        store.close()
    reasons = {change.reason for change in history}
    assert {"beats 1 on f1", "latency"} <= reasons and {c.actor for c in history} == {"bootstrap"}
