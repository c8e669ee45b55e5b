"""``mlwatch reference upload`` and ``mlwatch check`` through a real server on a SQLite store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.store import Store
from tests.conftest import RunningServer, start_server
from tests.drift.conftest import ingest, make_scenario, register


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    monkeypatch.chdir(tmp_path)  # no mlwatch.yaml here
    running = start_server(tmp_path, sqlite_url)
    yield running
    running.stop()


def _invoke(api: RunningServer, *args: str) -> Result:
    env = {"MLWATCH_URL": api.url, "MLWATCH_TOKEN": api.token, "MLWATCH_CONFIG": None, "MLWATCH_STORE_URL": None}
    return CliRunner(env=env).invoke(main, list(args), prog_name="mlwatch")


def _drifted_window(store_url: str, tmp_path: Path) -> float:
    """``credit`` with an hour of traffic whose ``mean_shift`` feature drifted; ref.csv its reference."""
    store = Store.open(store_url)
    service = register(store)
    end = time.time()
    ingest(store, service, make_scenario(1500, seed=2, mean_shift=1.0), start=end - 3600)
    store.close()
    make_scenario(2000, seed=1).frame.to_csv(tmp_path / "ref.csv", index=False)
    return end


def test_upload_reference_then_check_prints_verdicts(api: RunningServer, tmp_path: Path) -> None:
    end = _drifted_window(api.store_url, tmp_path)
    upload = _invoke(api, "reference", "upload", str(tmp_path / "ref.csv"), "--service", "credit")
    assert upload.exit_code == 0, upload.output
    assert "reference of credit (any model version): 2000 rows" in upload.output
    assert "baseline: accuracy" in upload.output

    check = _invoke(api, "check", "credit", "--end", str(end), "--fail-on-drift")
    assert check.exit_code == 0, check.output  # one drifted feature in five is not dataset drift
    assert "drift share 0.20, dataset drift: no" in check.stdout
    lines = {line.split()[0]: line for line in check.stdout.splitlines()[2:7]}
    assert lines["mean_shift"].endswith("DRIFT") and lines["stable"].endswith("-")


def test_a_json_lines_reference_is_sent_as_records(api: RunningServer, tmp_path: Path) -> None:
    _drifted_window(api.store_url, tmp_path)
    rows = make_scenario(300, seed=1).frame.to_dict("records")
    (tmp_path / "ref.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    upload = _invoke(api, "reference", "upload", str(tmp_path / "ref.jsonl"), "--service", "credit")
    assert upload.exit_code == 0, upload.output
    assert "reference of credit (any model version): 300 rows" in upload.stdout
    (tmp_path / "bad.jsonl").write_text('{"stable": 1}\nnot json\n')
    bad = _invoke(api, "reference", "upload", str(tmp_path / "bad.jsonl"), "--service", "credit")
    assert bad.exit_code == 1 and "bad.jsonl:2: expected JSON lines" in bad.stderr


def test_check_and_upload_refuse_unknown_service_and_bad_files(api: RunningServer, tmp_path: Path) -> None:
    store = Store.open(api.store_url)
    register(store)
    store.close()
    unknown = _invoke(api, "check", "nope")
    assert unknown.exit_code == 1 and f"the API at {api.url} answered 404: unknown service 'nope'" in unknown.stderr
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 broken")
    bad = _invoke(api, "reference", "upload", str(tmp_path / "bad.parquet"), "--service", "credit")
    assert bad.exit_code == 1 and "expected a readable Parquet file" in bad.stderr
    backwards = _invoke(api, "check", "credit", "--start", "10", "--end", "5")
    assert backwards.exit_code == 2 and "expected a start before the end" in backwards.output
    before = _invoke(api, "check", "credit", "--start", str(time.time() + 10))  # the end defaults to now
    assert before.exit_code == 1 and "answered 422: start: expected a time before end" in before.stderr


def test_check_json_prints_one_object_with_the_verdicts_and_says_which_api(api: RunningServer, tmp_path: Path) -> None:
    end = _drifted_window(api.store_url, tmp_path)
    assert _invoke(api, "reference", "upload", str(tmp_path / "ref.csv"), "--service", "credit").exit_code == 0
    check = _invoke(api, "check", "credit", "--end", str(end), "--json")
    assert check.exit_code == 0, check.output
    assert check.stderr == f"mlwatch check: API {api.url} (MLWATCH_URL)\n"
    found = json.loads(check.stdout)
    assert (found["service"], found["status"], found["window_end"], found["trigger"]) == ("credit", "ok", end, "api")
    assert found["summary"]["drift_share"] == 0.2 and found["summary"]["dataset_drift"] is False
    drifted = {f["name"]: f["drifted"] for f in found["results"]["features"]}
    assert drifted["mean_shift"] is True and drifted["stable"] is False


def test_check_loads_the_reference_named_in_the_servers_mlwatch_yaml(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_scenario(1000, seed=1).frame.to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "mlwatch.yaml").write_text(
        "services:\n  - name: credit\n    target: target\n    reference: reference.parquet\n"
    )
    running = start_server(tmp_path, sqlite_url)
    try:
        store = Store.open(sqlite_url)
        service = register(store)
        end = time.time()
        ingest(store, service, make_scenario(800, seed=3), start=end - 3600)
        store.close()
        check = _invoke(running, "check", "credit", "--end", str(end))
    finally:
        running.stop()
    assert check.exit_code == 0, check.output
    assert "ok, 800 rows sampled, reference 1000 rows" in check.stdout


def test_ingest_direct_refuses_a_missing_store_and_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "preds.csv").write_text("x\n1\n")
    env = {"MLWATCH_STORE_URL": f"sqlite:///{tmp_path / 'mlwatch.db'}", "MLWATCH_CONFIG": None}
    result = CliRunner(env=env).invoke(main, ["ingest", "preds.csv", "--service", "credit", "--direct"])
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
    (tmp_path / "preds.csv").write_text("x\n1\n")
    result = CliRunner(env={"MLWATCH_STORE_URL": None, "MLWATCH_CONFIG": None}).invoke(
        main, ["ingest", "preds.csv", "--service", "credit", "--direct"], prog_name="mlwatch"
    )
    assert result.exit_code == 1
    where = tmp_path / "state" / "m.db"
    assert f"no mlwatch store at sqlite:///{where} (store_url in mlwatch.yaml)" in result.stderr
    assert not (tmp_path / "state").exists()
