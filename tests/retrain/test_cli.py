"""``mlwatch retrain``, ``promote`` and ``rollback`` on a real store (no worker: jobs stay queued)."""

from __future__ import annotations

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


def test_promote_and_rollback_report_bad_input_without_a_traceback(config: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(main, ["--config", str(config), "promote", "nope", "1"])
    assert unknown.exit_code == 1 and "Error: unknown service 'nope'" in unknown.output
    malformed = runner.invoke(main, ["--config", str(config), "promote", "credit", "one"])
    assert malformed.exit_code == 1 and "version: expected a model version number" in malformed.output
    nothing = runner.invoke(main, ["--config", str(config), "rollback", "credit"])
    assert nothing.exit_code == 1 and "no 'previous' version to roll back to" in nothing.output
