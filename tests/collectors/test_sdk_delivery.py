"""Delivery while the API server dies and comes back; the spool's bound; the SDK's imports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from monitor.sdk import DeliveryOptions, Tracker
from monitor.sdk.spool import Spool
from monitor.store import Store
from tests.collectors.conftest import launch
from tests.conftest import RunningServer, free_port

FAST = DeliveryOptions(flush_interval=0.05, backoff_initial=0.05, backoff_max=0.3)


def _register(url: str, token: str, name: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{url}/v1/services", json={"name": name}, headers=headers).raise_for_status()


def _stored_ids(store_url: str, name: str) -> set[str]:
    store = Store.open(store_url)
    try:
        found = store.recent_predictions(store.get_service(name), limit=1_000_000, since=time.time() - 86400)
    finally:
        store.close()
    return {p.request_id for p in found}


def _send(tracker: Tracker, count: int, start: int, pause: float) -> list[float]:
    costs = []
    for i in range(start, start + count):
        begin = time.perf_counter()
        tracker.log({"i": i, "x": i * 0.5}, prediction=i % 2, latency_ms=1.0, request_id=f"r{i}")
        costs.append(time.perf_counter() - begin)
        time.sleep(pause)
    return costs


def test_server_killed_and_restarted_loses_no_record_and_never_slows_the_caller(tmp_path: Path) -> None:
    port, token = free_port(), f"t-{uuid.uuid4().hex}"
    store_url, url = f"sqlite:///{tmp_path / 'mlwatch.db'}", f"http://127.0.0.1:{port}"
    server = launch(tmp_path, store_url, port, token)
    _register(url, token, "restarts")
    tracker = Tracker("restarts", url=url, token=token, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False)
    costs = _send(tracker, 300, 0, 0.001)
    server.kill()
    server.wait()
    costs += _send(tracker, 600, 300, 0.001)  # all of these while the server is dead
    assert tracker.stats().server_down and tracker.stats().spooled_bytes > 0
    server = launch(tmp_path, store_url, port, token)
    try:
        costs += _send(tracker, 300, 900, 0.001)
        assert tracker.flush(20)
    finally:
        server.terminate()
        server.wait()
    assert _stored_ids(store_url, "restarts") == {f"r{i}" for i in range(1200)}
    stats = tracker.stats()
    assert (stats.dropped_queue_full, stats.dropped_spool_full, stats.rejected, stats.spooled_bytes) == (0, 0, 0, 0)
    costs.sort()
    assert costs[len(costs) // 2] < 50e-6 and costs[int(len(costs) * 0.99)] < 1e-3, costs[-10:]


def test_records_left_in_the_spool_at_exit_are_delivered_by_the_next_process(
    tmp_path: Path, api: RunningServer
) -> None:
    _register(api.url, api.token, "later")
    dead = f"http://127.0.0.1:{free_port()}"
    first = Tracker("later", url=dead, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False)
    for i in range(20):
        first.log({"i": i}, request_id=f"late-{i}")
    assert not first.flush(2)
    first.close(2)
    assert first.stats().spooled_bytes > 0
    second = Tracker(
        "later", url=api.url, token=api.token, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False
    )
    assert second.flush(10)
    second.close()
    assert _stored_ids(api.store_url, "later") == {f"late-{i}" for i in range(20)}


def test_the_default_spool_is_kept_per_server_so_a_restart_drains_it_and_no_other_server_gets_it(
    tmp_path: Path, api: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the default spool, of this test only
    port, token = free_port(), f"t-{uuid.uuid4().hex}"
    store_url, down_url = f"sqlite:///{tmp_path / 'down.db'}", f"http://127.0.0.1:{port}"
    server = launch(tmp_path, store_url, port, token)
    _register(down_url, token, "twin")
    _register(api.url, api.token, "twin")
    server.kill()
    server.wait()
    for_down = Tracker("twin", url=down_url, token=token, options=FAST, flush_at_exit=False)
    for i in range(20):
        for_down.log({"i": i}, request_id=f"down-{i}")
    assert not for_down.flush(2)
    for_down.close(2)
    assert for_down.stats().spooled_bytes > 0
    for_up = Tracker("twin", url=api.url + "/", token=api.token, options=FAST, flush_at_exit=False)
    for_up.log({"i": 99}, request_id="up-99")
    assert for_up.flush(10)
    for_up.close()
    assert _stored_ids(api.store_url, "twin") == {"up-99"}
    server = launch(tmp_path, store_url, port, token)
    try:
        restarted = Tracker("twin", url=down_url, token=token, options=FAST, flush_at_exit=False)
        assert restarted.flush(10)
        restarted.close()
    finally:
        server.terminate()
        server.wait()
    assert _stored_ids(store_url, "twin") == {f"down-{i}" for i in range(20)}


def test_positional_rows_spooled_while_the_server_was_away_are_named_by_its_schema_when_it_returns(
    tmp_path: Path,
) -> None:
    port, token = free_port(), f"t-{uuid.uuid4().hex}"
    store_url, url = f"sqlite:///{tmp_path / 'mlwatch.db'}", f"http://127.0.0.1:{port}"
    server = launch(tmp_path, store_url, port, token)
    features = [{"name": n, "type": "numerical"} for n in ("age", "income", "debt")]
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{url}/v1/services", json={"name": "rows", "features": features}, headers=headers).raise_for_status()
    server.kill()
    server.wait()
    tracker = Tracker("rows", url=url, token=token, spool_dir=tmp_path / "spool", options=FAST, flush_at_exit=False)
    for i in range(5):
        tracker.log([30 + i, 5200.0, 0.5], prediction=1, request_id=f"row-{i}")
    assert not tracker.flush(2)
    server = launch(tmp_path, store_url, port, token)
    try:
        assert tracker.flush(10)
    finally:
        tracker.close()
        server.terminate()
        server.wait()
    assert (tracker.stats().quarantined, tracker.stats().sent) == (0, 5)
    store = Store.open(store_url)
    try:
        found = store.recent_predictions(store.get_service("rows"), limit=100, since=time.time() - 600)
    finally:
        store.close()
    assert sorted((p.request_id, p.features) for p in found) == [
        (f"row-{i}", {"age": 30 + i, "income": 5200.0, "debt": 0.5}) for i in range(5)
    ]


def test_records_still_queued_at_process_exit_are_delivered_by_the_exit_hook(
    tmp_path: Path, api: RunningServer
) -> None:
    _register(api.url, api.token, "at-exit")
    code = (
        "from monitor.sdk import Tracker, DeliveryOptions; "
        f"t = Tracker('at-exit', url={api.url!r}, token={api.token!r}, spool_dir={str(tmp_path)!r}, "
        "options=DeliveryOptions(flush_interval=3600)); "
        "[t.log({'i': i}, request_id=f'exit-{i}') for i in range(50)]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert _stored_ids(api.store_url, "at-exit") == {f"exit-{i}" for i in range(50)}


def test_a_forked_worker_gets_a_sender_of_its_own(tmp_path: Path, api: RunningServer) -> None:
    _register(api.url, api.token, "forked")
    code = (
        "import os; from monitor.sdk import Tracker, DeliveryOptions; "
        f"t = Tracker('forked', url={api.url!r}, token={api.token!r}, spool_dir={str(tmp_path)!r}, "
        "options=DeliveryOptions(flush_interval=0.05)); "
        "t.log({'who': 'parent'}, request_id='parent'); t.flush(10); pid = os.fork(); "
        "t.log({'who': 'child' if pid == 0 else 'parent-after'}, request_id='child' if pid == 0 else 'parent-after'); "
        "ok = t.flush(10); os._exit(0 if ok else 3) if pid == 0 else None; "
        "assert os.waitpid(pid, 0)[1] == 0"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert _stored_ids(api.store_url, "forked") == {"parent", "child", "parent-after"}


def test_spool_past_its_bound_drops_the_oldest_batches_and_counts_their_records(tmp_path: Path) -> None:
    batches = [[{"request_id": f"b{b}-r{i}", "features": {"x": 1.0}} for i in range(10)] for b in range(5)]
    spool = Spool(tmp_path, max_bytes=len(json.dumps(batches[0]).encode()) * 3)
    for batch in batches:
        spool.write(batch)
    assert spool.dropped == 20
    kept = []
    while (claimed := spool.claim()) is not None:
        path, records = claimed
        kept.append(records[0]["request_id"])
        spool.done(path)
    assert kept == ["b2-r0", "b3-r0", "b4-r0"]


def test_a_claim_left_by_a_dead_process_is_given_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.write([{"request_id": "a"}])
    path, _ = spool.claim() or (None, None)
    assert path is not None and not spool.pending()
    orphan = path.with_name(path.name.replace(f".{__import__('os').getpid()}.", ".999999999."))
    path.rename(orphan)
    assert Spool(tmp_path, max_bytes=10_000).pending()


def test_the_readme_imports_of_tracker_middleware_and_wrappers_load_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); "
        "from monitor.sdk import Tracker, MlwatchASGIMiddleware, MlwatchWSGIMiddleware, TrackedSession; "
        "print(','.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    loaded = {name.partition(".")[0] for name in out.split(",")}
    assert loaded - set(sys.stdlib_module_names) == {"monitor"}  # tests/collectors/test_sdk_install.py: in a bare venv
