"""The bulk lookups ``mlwatch ingest --direct`` makes of stored request ids, on every backend."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from monitor.cli import main
from monitor.records import Feature, PredictionRecord
from monitor.store import Store
from monitor.store.request_ids import SLICE, stored_count, stored_request_ids


def test_stored_ids_are_found_per_service_across_slices(store_url: str) -> None:
    store = Store.open(store_url, migrate=True)
    try:
        mine = store.upsert_service("mine", task="classification", features=(Feature("x"),))
        other = store.upsert_service("other", task="classification", features=(Feature("x"),))
        stored = [f"r{i}" for i in range(0, 2 * SLICE + 10, 2)]  # every other id, over three slices
        store.add_predictions(mine, [PredictionRecord(rid, 1.0e9, {"x": 1.0}) for rid in stored])
        store.add_predictions(other, [PredictionRecord("r1", 1.0e9, {"x": 1.0})])
        asked = [f"r{i}" for i in range(2 * SLICE + 10)]
        assert stored_request_ids(store.engine, mine.id, asked) == set(stored)
        assert stored_count(store.engine, mine.id, asked) == len(stored)
        assert stored_request_ids(store.engine, other.id, asked) == {"r1"}
        assert stored_count(store.engine, mine.id, []) == 0
    finally:
        store.close()


def test_a_rerun_skips_frames_already_stored_without_reading_their_cells_again(tmp_path: Path, sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    store.upsert_service("batch", task="classification", features=(Feature("x"),))
    store.close()
    frame = pd.DataFrame({"request_id": [f"r{i}" for i in range(100)], "x": [float(i) for i in range(100)]})
    frame.to_csv(tmp_path / "p.csv", index=False)
    env = {"MLWATCH_STORE_URL": sqlite_url, "MLWATCH_CONFIG": None}
    args = ["ingest", str(tmp_path / "p.csv"), "--service", "batch", "--direct", "--chunk-size", "50"]
    assert CliRunner().invoke(main, args, env=env).exit_code == 0
    frame = frame.astype({"x": object})
    frame.loc[10, "x"] = "ten"  # in a frame that is stored whole: nothing of it would be stored again
    frame.loc[99, "request_id"] = "new-id"  # a new row in the second frame ...
    frame.loc[60, "x"] = "sixty"  # ... so that frame is checked, and refused
    frame.to_csv(tmp_path / "p.csv", index=False)
    again = CliRunner().invoke(main, args, env=env)
    assert again.exit_code == 1
    assert "line 62: features.x: expected a number for a numerical feature, got 'sixty'" in again.output
    frame.loc[60, "x"] = 60.0
    frame.to_csv(tmp_path / "p.csv", index=False)
    fixed = CliRunner().invoke(main, args, env=env)
    assert fixed.exit_code == 0, fixed.output
    assert "p.csv: 100 row(s), 1 new, 99 already stored" in fixed.stdout
