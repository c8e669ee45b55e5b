"""`mlwatch ingest` on CSV, Parquet and JSON lines against a real API server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.records import Feature, PredictionRecord
from monitor.store import Store
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer, free_port


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [float(i) for i in range(rows)],
            "color": ["red" if i % 2 else "blue" for i in range(rows)],
            "prediction": [i % 2 for i in range(rows)],
            "label": [(i + 1) % 2 for i in range(rows)],
            "timestamp": pd.date_range("2026-11-20", periods=rows, freq="min", tz="UTC"),
            "latency_ms": [1.5] * rows,
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, date_format="iso")
    return path


def _ingest(api: RunningServer, path: Path, service: str, *extra: str) -> Result:
    args = ["ingest", str(path), "--service", service, "--chunk-size", "40", *extra]
    return CliRunner().invoke(main, args, env={"MLWATCH_URL": api.url, "MLWATCH_TOKEN": api.token}, prog_name="mlwatch")


def _register_typed(api: RunningServer, name: str) -> None:
    body = {"name": name, "features": [{"name": "x", "type": "numerical"}, {"name": "color", "type": "categorical"}]}
    with api.client() as client:
        client.post("/v1/services", json=body).raise_for_status()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_ingest_loads_every_row_with_labels_and_times_and_rerun_skips_them(
    api: RunningServer, tmp_path: Path, suffix: str
) -> None:
    service = f"batch{suffix.strip('.')}"
    _register_typed(api, service)
    path = _write(_frame(100), tmp_path / f"preds{suffix}")
    first = _ingest(api, path, service, "--model-version", "4")
    assert first.exit_code == 0, first.output
    assert "100 row(s), 100 new" in first.output
    rows = stored(api, service)
    assert [r.features for r in rows[:2]] == [{"x": 0.0, "color": "blue"}, {"x": 1.0, "color": "red"}]
    assert [(r.prediction, r.label, r.model_version, r.latency_ms) for r in rows[:2]] == [
        (0, 1, "4", 1.5),
        (1, 0, "4", 1.5),
    ]
    assert rows[0].ts == pd.Timestamp("2026-11-20", tz="UTC").timestamp() and len(rows) == 100
    again = _ingest(api, path, service)
    assert again.exit_code == 0 and "100 row(s), 0 new, 100 already stored" in again.output


NOT_A_NUMBER = ("x", "seventy-five", "features.x: expected a number for a numerical feature, got 'seventy-five'")
NEGATIVE = ("latency_ms", -3.0, "latency_ms: expected a non-negative number of milliseconds, got -3.0")


@pytest.mark.parametrize(
    ("suffix", "where", "bad"),
    [(".csv", "line 77", NOT_A_NUMBER), (".jsonl", "line 76", NOT_A_NUMBER), (".parquet", "row 76", NEGATIVE)],
)
def test_a_bad_row_is_reported_with_its_line_and_nothing_of_the_file_is_stored(
    api: RunningServer, tmp_path: Path, suffix: str, where: str, bad: tuple[str, object, str]
) -> None:
    service = f"bad{suffix.strip('.')}"
    _register_typed(api, service)
    column, value, message = bad
    frame = _frame(100).astype({column: object})
    frame.loc[75, column] = value
    if suffix == ".parquet":
        frame = frame.astype({column: float})
    result = _ingest(api, _write(frame, tmp_path / f"bad{suffix}"), service)
    assert result.exit_code == 1
    assert f"{where}: {message}" in result.output
    assert stored(api, service) == []


def test_a_bad_timestamp_names_the_column_and_line(api: RunningServer, tmp_path: Path) -> None:
    register(api, "badtime")
    frame = _frame(5).astype({"timestamp": object})
    frame.loc[2, "timestamp"] = "yesterday-ish"
    result = _ingest(api, _write(frame, tmp_path / "t.csv"), "badtime")
    assert result.exit_code == 1 and "line 4: timestamp: expected an ISO 8601 time or epoch seconds" in result.output


def test_an_unknown_service_is_refused_with_the_servers_message(api: RunningServer, tmp_path: Path) -> None:
    result = _ingest(api, _write(_frame(3), tmp_path / "p.csv"), "nope")
    assert result.exit_code == 1 and "cannot read service 'nope'" in result.output
    store = Store.open(api.store_url)
    assert [s.name for s in store.list_services() if s.name == "nope"] == []
    store.close()


def _direct(store_url: str, path: Path, service: str, *extra: str) -> Result:
    args = ["ingest", str(path), "--service", service, "--chunk-size", "40", "--direct", *extra]
    env = {"MLWATCH_STORE_URL": store_url, "MLWATCH_CONFIG": None}
    return CliRunner().invoke(main, args, env=env, prog_name="mlwatch")


def _typed_store(url: str, name: str = "direct") -> Store:
    store = Store.open(url)
    store.upsert_service(name, task="classification", features=(Feature("x"), Feature("color", "categorical")))
    return store


def test_ingest_direct_writes_into_the_configured_store_and_a_rerun_sends_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    _typed_store(sqlite_url).close()
    path = _write(_frame(100), tmp_path / "preds.parquet")
    first = _direct(sqlite_url, path, "direct", "--model-version", "4", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) | {"check_seconds": 0, "store_seconds": 0} == {
        "file": str(path),
        "service": "direct",
        "target": f"store {sqlite_url} (MLWATCH_STORE_URL)",
        "rows": 100,
        "new": 100,
        "already_stored": 0,
        "check_seconds": 0,
        "store_seconds": 0,
    }
    assert f"mlwatch ingest: store {sqlite_url} (MLWATCH_STORE_URL)" in first.stderr
    store = Store.open(sqlite_url)
    service = store.get_service("direct")
    rows = sorted(store.recent_predictions(service, limit=1000, since=0), key=lambda p: p.ts)
    store.close()
    assert [(r.features, r.prediction, r.label, r.model_version) for r in rows[:2]] == [
        ({"x": 0.0, "color": "blue"}, 0, 1, "4"),
        ({"x": 1.0, "color": "red"}, 1, 0, "4"),
    ]
    again = _direct(sqlite_url, path, "direct", "--json")
    assert json.loads(again.stdout)["new"] == 0 and json.loads(again.stdout)["already_stored"] == 100
    assert "storing: 0 rows" in again.stderr  # every frame was found stored while checking


def test_a_direct_rerun_after_a_partial_load_stores_the_missing_rows_and_their_labels(
    tmp_path: Path, sqlite_url: str
) -> None:
    frame = _frame(100).assign(request_id=[f"r{i}" for i in range(100)])
    path = _write(frame, tmp_path / "preds.csv")
    store = _typed_store(sqlite_url)
    service = store.get_service("direct")
    done = [PredictionRecord(f"r{i}", 1.0e9, {"x": float(i)}) for i in range(0, 100, 3)]  # parts of every chunk
    store.add_predictions(service, done)
    store.close()
    result = _direct(sqlite_url, path, "direct", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 66 and json.loads(result.stdout)["already_stored"] == 34
    store = Store.open(sqlite_url)
    rows = {p.request_id: p for p in store.recent_predictions(service, limit=1000, since=0)}
    store.close()
    assert len(rows) == 100 and rows["r0"].ts == 1.0e9  # the stored row is left as it was
    assert (rows["r1"].label, rows["r2"].label, rows["r1"].features) == (0, 1, {"x": 1.0, "color": "red"})


def test_ingest_direct_refuses_a_store_that_does_not_exist_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "mlwatch.db"
    url = f"sqlite:///{missing}"
    result = _direct(url, _write(_frame(3), tmp_path / "p.csv"), "credit")
    assert result.exit_code == 1
    assert f"no mlwatch store at {url} (MLWATCH_STORE_URL): {missing} does not exist" in result.stderr
    assert "--config" in result.stderr and "MLWATCH_STORE_URL=" in result.stderr
    assert not missing.exists() and not missing.parent.exists()


def test_ingest_direct_names_the_store_it_looked_in_for_an_unknown_service(tmp_path: Path, sqlite_url: str) -> None:
    _typed_store(sqlite_url).close()
    result = _direct(sqlite_url, _write(_frame(3), tmp_path / "p.csv"), "nope")
    assert result.exit_code == 1
    assert "unknown service 'nope'" in result.stderr
    assert f"looked in the store {sqlite_url} (MLWATCH_STORE_URL); point at another with --config" in result.stderr


def test_the_first_bad_row_of_all_columns_is_reported(tmp_path: Path, sqlite_url: str) -> None:
    _typed_store(sqlite_url).close()
    frame = _frame(100)
    frame.loc[60, "x"] = float("inf")
    frame.loc[30, "latency_ms"] = -3.0  # a later column, an earlier row
    result = _direct(sqlite_url, _write(frame, tmp_path / "bad.parquet"), "direct")
    assert result.exit_code == 1
    assert "row 31: latency_ms: expected a non-negative number of milliseconds, got -3.0" in result.stderr
    frame.loc[30, "latency_ms"] = 1.0
    result = _direct(sqlite_url, _write(frame, tmp_path / "bad.parquet"), "direct")
    assert "row 61: features.x: expected a finite number, got inf" in result.stderr


def test_an_unregistered_feature_is_refused_at_its_first_value(tmp_path: Path, sqlite_url: str) -> None:
    _typed_store(sqlite_url).close()
    frame = _frame(100).assign(extra=[None] * 50 + [1.5] * 50)
    result = _direct(sqlite_url, _write(frame, tmp_path / "extra.parquet"), "direct")
    assert result.exit_code == 1
    assert "row 51: features.extra: not a registered feature of service 'direct' (registered: color, x)" in (
        result.stderr
    )


def test_the_api_path_prints_a_json_summary_and_names_the_server(api: RunningServer, tmp_path: Path) -> None:
    _register_typed(api, "jsonapi")
    result = _ingest(api, _write(_frame(50), tmp_path / "p.jsonl"), "jsonapi", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["new"], summary["target"]) == (50, 50, f"server {api.url} (MLWATCH_URL)")
    assert f"mlwatch ingest: server {api.url} (MLWATCH_URL)" in result.stderr


def test_both_phases_report_progress_on_stderr_and_leave_stdout_to_the_summary(tmp_path: Path, sqlite_url: str) -> None:
    _typed_store(sqlite_url).close()
    result = _direct(sqlite_url, _write(_frame(100), tmp_path / "p.parquet"), "direct")
    assert result.exit_code == 0, result.output
    assert re.search(r"^checking: 100/100 rows \(100%\), [\d,]+ rows/s in [\d.]+ s$", result.stderr, re.M)
    assert re.search(r"^storing: 100/100 rows \(100%\), [\d,]+ rows/s in [\d.]+ s$", result.stderr, re.M)
    assert result.stdout == "p.parquet: 100 row(s), 100 new, 0 already stored\n"


def test_ingest_direct_knows_a_service_named_only_in_the_config_it_was_given(tmp_path: Path) -> None:
    db = tmp_path / "state" / "mlwatch.db"
    db.parent.mkdir()
    Store.open(f"sqlite:///{db}").close()
    config = tmp_path / "mlwatch.yaml"
    config.write_text(f"store_url: sqlite:///{db}\nservices:\n  - name: configured\n")
    path = _write(_frame(20), tmp_path / "p.parquet")
    args = ["--config", str(config), "ingest", str(path), "--service", "configured", "--direct"]
    result = CliRunner().invoke(
        main, args, env={"MLWATCH_STORE_URL": None, "MLWATCH_CONFIG": None}, prog_name="mlwatch"
    )
    assert result.exit_code == 0, result.output
    assert f"mlwatch ingest: store sqlite:///{db} (store_url in {config})" in result.stderr
    assert result.stdout == "p.parquet: 20 row(s), 20 new, 0 already stored\n"


def test_an_unreachable_server_is_named_with_the_ways_to_point_elsewhere(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = ["ingest", str(_write(_frame(3), tmp_path / "p.csv")), "--service", "credit"]
    result = CliRunner().invoke(main, args, env={"MLWATCH_URL": url, "MLWATCH_TOKEN": "t"}, prog_name="mlwatch")
    assert result.exit_code == 1
    assert f"cannot reach the server {url} (MLWATCH_URL): " in result.stderr
    assert "--url or MLWATCH_URL, or write into the store itself with --direct" in result.stderr


def test_json_lines_whose_chunks_name_different_features_are_stored_together(tmp_path: Path, sqlite_url: str) -> None:
    """Chunks of a JSON-lines file may have different columns; ``--direct`` joins chunks into one
    send, but only chunks of the same columns: each row keeps its own chunk's features."""
    store = Store.open(sqlite_url)
    store.upsert_service("sparse", task="classification")
    store.close()
    lines = [{"request_id": f"a{i}", "timestamp": 1.7e9 + i, "x": float(i), "prediction": 1} for i in range(40)]
    lines += [{"request_id": f"b{i}", "timestamp": 1.8e9 + i, "y": "red", "prediction": 0} for i in range(40)]
    path = tmp_path / "sparse.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = _direct(sqlite_url, path, "sparse", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 80
    store = Store.open(sqlite_url)
    rows = {p.request_id: p for p in store.recent_predictions(store.get_service("sparse"), limit=1000, since=0)}
    store.close()
    assert (rows["a3"].features, rows["a3"].prediction) == ({"x": 3.0}, 1)
    assert (rows["b3"].features, rows["b3"].prediction, rows["b3"].ts) == ({"y": "red"}, 0, 1.8e9 + 3)
