"""``mlwatch retrain``, ``promote`` and ``rollback`` on a real store (no worker: jobs stay queued)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.store import Store
from tests.retrain.scenario import register


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mlwatch.yaml"
    settings = {
        "store_url": f"sqlite:///{tmp_path / 'mlwatch.db'}",
        "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'm.db'}",
    }
    path.write_text(yaml.safe_dump(settings))
    store = Store.open(settings["store_url"])
    register(store)
    store.close()
    return path


def test_retrain_queues_once_and_wait_says_when_no_worker_ran_it(config: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["--config", str(config), "retrain", "credit", "--fine-tune"])
    assert first.exit_code == 0 and first.output.strip() == "job 1 queued for credit"
    waited = runner.invoke(main, ["--config", str(config), "retrain", "credit", "--wait", "--timeout", "0"])
    assert waited.exit_code == 1
    assert "job 1 already queued" in waited.output and "is `mlwatch worker` running?" in waited.output


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


def test_retrain_wait_shows_the_job_progress_and_log_lines_as_they_come(config: Path) -> None:
    store = Store.open(str(yaml.safe_load(config.read_text())["store_url"]))
    worker = threading.Thread(target=_run_job_elsewhere, args=(store,))
    worker.start()
    try:
        waited = CliRunner().invoke(main, ["--config", str(config), "retrain", "credit", "--wait", "--timeout", "30"])
    finally:
        worker.join()
        store.close()
    assert waited.exit_code == 0, waited.output
    shown = waited.stderr.splitlines()
    assert shown[0] == "job 1 running on w1" and shown[-1] == "job 1 succeeded"
    steps = [re.fullmatch(r"\[ *(\d+)%\] \d\d:\d\d:\d\d (.+)", line) for line in shown[1:-1]]
    assert all(steps), shown
    lines = [m.group(2) for m in steps if m]
    assert lines == ["building the training data (retrain)", "logging and registering the model"]
    percents = [int(m.group(1)) for m in steps if m]
    assert percents == sorted(percents) and percents[0] >= 20
    assert waited.stdout.startswith("job 1 queued for credit\n") and '"decision": "promote"' in waited.stdout


def test_promote_and_rollback_report_bad_input_without_a_traceback(config: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(main, ["--config", str(config), "promote", "nope", "1"])
    assert unknown.exit_code == 1 and "Error: unknown service 'nope'" in unknown.output
    malformed = runner.invoke(main, ["--config", str(config), "promote", "credit", "one"])
    assert malformed.exit_code == 1 and "version: expected a model version number" in malformed.output
    nothing = runner.invoke(main, ["--config", str(config), "rollback", "credit"])
    assert nothing.exit_code == 1 and "no 'previous' version to roll back to" in nothing.output
