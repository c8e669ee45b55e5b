"""``mlwatch reference upload`` and ``mlwatch check`` against a real SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.store import Store
from tests.drift.conftest import ingest, make_scenario, register


@pytest.fixture
def cli(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no mlwatch.yaml here: the store comes from the environment
    return CliRunner(env={"MLWATCH_STORE_URL": sqlite_url, "MLWATCH_CONFIG": None})


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
    unknown = cli.invoke(main, ["check", "nope"])
    assert unknown.exit_code == 1 and "unknown service 'nope'" in unknown.output
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 broken")
    store_url = cli.env["MLWATCH_STORE_URL"]
    assert store_url is not None
    store = Store.open(store_url)
    register(store)
    store.close()
    bad = cli.invoke(main, ["reference", "upload", str(tmp_path / "bad.parquet"), "--service", "credit"])
    assert bad.exit_code == 1 and "expected a readable Parquet file" in bad.output
    backwards = cli.invoke(main, ["check", "credit", "--start", "10", "--end", "5"])
    assert backwards.exit_code == 2 and "expected a start before the end" in backwards.output


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
