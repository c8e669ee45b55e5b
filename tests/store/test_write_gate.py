"""SQLite writers queue at the store's write gate, a file lock other processes honour too."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from monitor.store import Store
from monitor.store.engine import write_transaction


def _locked_by_someone_else(lock_file: Path) -> bool:
    fd = os.open(lock_file, os.O_RDWR)  # a separate open file: flock treats it like another process
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_write_transaction_holds_the_gate_until_it_commits(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    lock_file = tmp_path / "m.db-writelock"
    inside, leave = threading.Event(), threading.Event()

    def writer() -> None:
        with write_transaction(store.engine):
            inside.set()
            leave.wait(10)
        store.audit("test", "wrote", "gate")  # and the gate opens again for the next writer

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    assert _locked_by_someone_else(lock_file)
    leave.set()
    thread.join(10)
    assert not _locked_by_someone_else(lock_file)
    store.close()


def test_writers_in_threads_take_turns_and_nothing_is_lost(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                store.audit(f"t{n}", "wrote", str(i))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar() == 80
    store.close()
