"""SQLite: committed pages reach the database file on a background thread, not in writers' commits."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from monitor.records import Feature, PredictionRecord
from monitor.store import Store


def _checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("mlwatch-checkpoint")]


def _rows_in_database_file(db: Path, copy: Path) -> int:
    """Predictions in the main database file alone, as a copy without its WAL would show them."""
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(f"file:{copy}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
    except sqlite3.DatabaseError:  # copied while a checkpoint was writing it: try again
        return -1
    finally:
        conn.close()


def test_a_small_commit_reaches_the_database_file_without_waiting_for_a_full_wal(tmp_path: Path) -> None:
    # SQLite's own writers copy the WAL back only every 1000 pages; a few rows stay in the WAL.
    db = tmp_path / "m.db"
    store = Store.open(f"sqlite:///{db}")
    service = store.upsert_service("svc", task="classification", features=(Feature("x"),))
    now = time.time()
    records = [PredictionRecord(request_id=f"r{i}", ts=now, features={"x": float(i)}) for i in range(50)]
    assert store.add_predictions(service, records).accepted == 50
    deadline = time.monotonic() + 10
    while (rows := _rows_in_database_file(db, tmp_path / "copy.db")) != 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows == 50
    store.close()


def test_the_checkpoint_thread_starts_with_the_first_write_and_stops_with_the_store(tmp_path: Path) -> None:
    before = set(_checkpoint_threads())
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    store.list_services()
    assert set(_checkpoint_threads()) == before  # a process that only reads starts none

    store.audit("test", "wrote", "something")
    started = set(_checkpoint_threads()) - before
    assert [thread.name for thread in started] == ["mlwatch-checkpoint m.db"]

    store.close()
    assert not any(thread.is_alive() for thread in started)
    store.audit("test", "wrote", "after close")  # the engine reconnects; the thread stays stopped
    assert set(_checkpoint_threads()) == before


FORK_SCENARIO = """
import multiprocessing, sys, threading
from monitor.store import Store

def names():
    return [t.name for t in threading.enumerate() if t.name.startswith("mlwatch-checkpoint") and t.is_alive()]

def write_in_child(store, results):
    store.engine.dispose(close=False)  # SQLAlchemy's advice for a forked child: new connections, same engine
    store.audit("child", "wrote", "after fork")
    results.put(names())

if __name__ == "__main__":
    store = Store.open(f"sqlite:///{sys.argv[1]}")
    store.audit("parent", "wrote", "before fork")  # the parent's thread runs; a fork does not copy it
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=write_in_child, args=(store, results))
    child.start()
    print(results.get(timeout=30))
    child.join(30)
    print(child.exitcode)
    store.close()
"""


def test_a_forked_child_that_writes_starts_its_own_checkpoint_thread(tmp_path: Path) -> None:
    """Run in a fresh interpreter: forking this test process, with the threads earlier tests left
    running, could copy a lock one of them held and hang the child (it did once in a full run)."""
    script = tmp_path / "fork_scenario.py"
    script.write_text(FORK_SCENARIO)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "m.db")], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    names, exitcode = done.stdout.splitlines()[-2:]
    assert (names, exitcode) == ("['mlwatch-checkpoint m.db']", "0")
