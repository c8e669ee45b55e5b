"""``mlwatch reference upload`` and ``mlwatch check`` against a real SQLite store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.store import Store
from tests.drift.conftest import ingest, make_scenario, register


@pytest.fixture
def cli(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no mlwatch.yaml here: the store comes from the environment
    return CliRunner(env={"MLWATCH_STORE_URL": sqlite_url, "MLWATCH_CONFIG": None})


def _invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), prog_name="mlwatch")


def test_upload_reference_then_check_prints_verdicts(cli: CliRunner, tmp_path: Path, sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    service = register(store)
    end = time.time()
    ingest(store, service, make_scenario(1500, seed=2, mean_shift=1.0), start=end - 3600)
    store.close()
    make_scenario(2000, seed=1).frame.to_csv(tmp_path / "ref.csv", index=False)

    upload = cli.invoke(main, ["reference", "upload", str(tmp_path / "ref.csv"), "--service", "credit"])
    assert upload.exit_code == 0, upload.output
    assert "reference of credit (any model version): 2000 rows" in upload.output
    assert "baseline: accuracy" in upload.output

    check = cli.invoke(main, ["check", "credit", "--end", str(end), "--fail-on-drift"])
    assert check.exit_code == 0, check.output  # one drifted feature in five is not dataset drift
    assert "drift share 0.20, dataset drift: no" in check.output
    lines = {line.split()[0]: line for line in check.output.splitlines()[2:7]}
    assert lines["mean_shift"].endswith("DRIFT") and lines["stable"].endswith("-")


def test_check_and_upload_refuse_unknown_service_and_bad_files(cli: CliRunner, tmp_path: Path) -> None:
    store_url = cli.env["MLWATCH_STORE_URL"]
    assert store_url is not None
    store = Store.open(store_url)
    register(store)
    store.close()
    unknown = _invoke(cli, "check", "nope")
    assert unknown.exit_code == 1 and "unknown service 'nope'" in unknown.output
    assert f"(looked in the store at {store_url} (MLWATCH_STORE_URL); point at another with --config" in unknown.stderr
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 broken")
    bad = _invoke(cli, "reference", "upload", str(tmp_path / "bad.parquet"), "--service", "credit")
    assert bad.exit_code == 1 and "expected a readable Parquet file" in bad.output
    backwards = _invoke(cli, "check", "credit", "--start", "10", "--end", "5")
    assert backwards.exit_code == 2 and "expected a start before the end" in backwards.output


@pytest.mark.parametrize("command", [["check", "credit"], ["reference", "upload", "ref.csv", "--service", "credit"]])
def test_a_command_that_needs_stored_data_refuses_a_missing_store_and_creates_none(
    cli: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "ref.csv").write_text("x\n1\n")
    result = _invoke(cli, *command)
    db = tmp_path / "mlwatch.db"
    assert result.exit_code == 1
    assert f"no mlwatch store at sqlite:///{db} (MLWATCH_STORE_URL): {db} does not exist" in result.stderr
    assert "--config PATH/mlwatch.yaml or MLWATCH_STORE_URL=" in result.stderr
    assert not db.exists()


def test_a_relative_store_url_is_shown_as_the_absolute_path_it_resolved_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlwatch.yaml").write_text("store_url: sqlite:///state/m.db\n")
    result = CliRunner(env={"MLWATCH_STORE_URL": None, "MLWATCH_CONFIG": None}).invoke(
        main, ["check", "credit"], prog_name="mlwatch"
    )
    assert result.exit_code == 1
    where = tmp_path / "state" / "m.db"
    assert f"no mlwatch store at sqlite:///{where} (store_url in mlwatch.yaml)" in result.stderr
    assert not (tmp_path / "state").exists()


def test_check_json_prints_one_object_with_the_verdicts_and_says_which_store(
    cli: CliRunner, sqlite_url: str, tmp_path: Path
) -> None:
    store = Store.open(sqlite_url)
    service = register(store)
    end = time.time()
    ingest(store, service, make_scenario(1500, seed=2, mean_shift=1.0), start=end - 3600)
    store.close()
    make_scenario(2000, seed=1).frame.to_csv(tmp_path / "ref.csv", index=False)
    upload = _invoke(cli, "reference", "upload", str(tmp_path / "ref.csv"), "--service", "credit")
    assert f"mlwatch reference upload: store {sqlite_url} (MLWATCH_STORE_URL)" in upload.stderr
    check = _invoke(cli, "check", "credit", "--end", str(end), "--json")
    assert check.exit_code == 0, check.output
    assert check.stderr == f"mlwatch check: store {sqlite_url} (MLWATCH_STORE_URL)\n"
    found = json.loads(check.stdout)
    assert (found["service"], found["status"], found["window_end"]) == ("credit", "ok", end)
    assert found["summary"]["drift_share"] == 0.2 and found["summary"]["dataset_drift"] is False
    drifted = {f["name"]: f["drifted"] for f in found["results"]["features"]}
    assert drifted["mean_shift"] is True and drifted["stable"] is False


def test_check_loads_the_reference_named_in_mlwatch_yaml(cli: CliRunner, tmp_path: Path, sqlite_url: str) -> None:
    make_scenario(1000, seed=1).frame.to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "mlwatch.yaml").write_text(
        "services:\n  - name: credit\n    target: target\n    reference: reference.parquet\n"
    )
    store = Store.open(sqlite_url)
    service = register(store)
    end = time.time()
    ingest(store, service, make_scenario(800, seed=3), start=end - 3600)
    store.close()
    check = cli.invoke(main, ["check", "credit", "--end", str(end)])
    assert check.exit_code == 0, check.output
    assert "ok, 800 rows sampled, reference 1000 rows" in check.output
