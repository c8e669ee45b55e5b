"""`mlwatch ingest` on CSV, Parquet and JSON lines against a real API server."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.store import Store
from tests.collectors.conftest import register, stored
from tests.conftest import RunningServer


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
    return CliRunner().invoke(main, args, env={"MLWATCH_URL": api.url, "MLWATCH_TOKEN": api.token})


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
