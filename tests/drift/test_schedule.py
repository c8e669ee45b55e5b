"""The worker's tumbling-window schedule: each window checked once, re-checked when late labels land."""

from __future__ import annotations

import time

from monitor.config import Settings
from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.drift.schedule import CheckSchedule, complete_windows
from monitor.store import Store
from monitor.worker import WorkerContext, load_tasks
from tests.drift.conftest import add_labels, ingest, make_scenario, register


def test_complete_windows_are_aligned_tumbling_windows_newest_first() -> None:
    windows = complete_windows(3600.0, now=7200.0 * 3 + 10, count=3)
    assert [(w.start, w.end) for w in windows] == [(18000.0, 21600.0), (14400.0, 18000.0), (10800.0, 14400.0)]


def test_each_window_is_checked_once_then_again_when_late_labels_arrive(store: Store) -> None:
    now = time.time()
    window = complete_windows(3600.0, now, 1)[0]
    service = register(store, window=3600.0)
    keep_reference(store, service, make_scenario(2000, seed=1).frame)
    scenario = make_scenario(1000, seed=2, concept_flip=0.3)
    ingest(store, service, scenario, start=window.start)
    schedule = CheckSchedule(store, CheckRunner(store), recheck_windows=3, recheck_after=0.0)

    first = schedule.tick(now)
    assert [(c.window_start, c.window_end, c.trigger) for c in first] == [(window.start, window.end, "schedule")]
    assert first[0].summary.encode()["quality"] is None
    assert schedule.tick(now) == []  # already checked, no new labels

    add_labels(store, service, scenario, share=0.6)
    again = schedule.tick(time.time())
    assert [c.window_start for c in again] == [window.start]
    assert (
        again[0].summary.encode()["label_coverage"] > 0.5
        and again[0].summary.encode()["decay"]["accuracy"]["absolute"] > 0.05
    )
    assert schedule.tick(time.time()) == []  # labels are older than the re-check


def test_recheck_waits_for_recheck_after(store: Store) -> None:
    now = time.time()
    window = complete_windows(3600.0, now, 1)[0]
    service = register(store, window=3600.0)
    keep_reference(store, service, make_scenario(500, seed=1).frame)
    scenario = make_scenario(300, seed=3)
    ingest(store, service, scenario, start=window.start)
    schedule = CheckSchedule(store, CheckRunner(store), recheck_windows=2, recheck_after=3600.0)
    assert len(schedule.tick(now)) == 1
    add_labels(store, service, scenario, share=0.5)
    assert schedule.tick(time.time()) == []
    later = schedule.tick(time.time() + 3600.0)  # (a newer window may be due by then as well)
    assert [c.window_start for c in later if c.window_start == window.start] == [window.start]


def test_by_default_a_late_window_is_rechecked_at_most_four_times_per_window_length(store: Store) -> None:
    now = time.time()
    window = complete_windows(60.0, now, 1)[0]  # a service with one-minute windows
    service = register(store, window=60.0)
    keep_reference(store, service, make_scenario(500, seed=1).frame)
    scenario = make_scenario(300, seed=3)
    ingest(store, service, scenario, start=window.start)
    schedule = CheckSchedule(store, CheckRunner(store), recheck_windows=2)
    [first] = [c for c in schedule.tick(now) if c.window_start == window.start]
    add_labels(store, service, scenario, share=0.5)
    assert [c for c in schedule.tick(first.created_at + 14.0) if c.window_start == window.start] == []
    again = [c for c in schedule.tick(first.created_at + 15.0) if c.window_start == window.start]
    assert len(again) == 1 and again[0].summary.label_coverage >= 0.5  # 15 s: a quarter of the window, not 900 s


def test_worker_loads_the_check_task(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    context = WorkerContext(Settings(store_url=sqlite_url), store)
    tasks = load_tasks(context, ["monitor.drift.schedule:check_tasks"])
    assert [(t.name, t.interval) for t in tasks] == [("drift-checks", 60.0)]
    tasks[0].run(time.time())  # no services: nothing to do, and nothing fails
    store.close()


def test_configured_reference_files_are_loaded_and_reloaded_when_changed(sqlite_url: str, tmp_path) -> None:
    import os

    from monitor.config import ServiceConfig
    from monitor.drift.reference import sync_configured_references

    store = Store.open(sqlite_url)
    service = register(store)
    path = tmp_path / "reference.parquet"
    make_scenario(300, seed=1).frame.to_parquet(path)
    settings = Settings(
        store_url=sqlite_url,
        services=(ServiceConfig(name="credit", reference=str(path)), ServiceConfig(name="gone", reference="nope.csv")),
    )
    store.upsert_service("gone", task="classification")
    problems = sync_configured_references(settings, store)
    assert len(problems) == 1 and problems[0].startswith("service gone: reference nope.csv:")
    assert store.reference_info(service).row_count == 300  # type: ignore[union-attr]
    first = store.reference_info(service).created_at  # type: ignore[union-attr]
    sync_configured_references(settings, store)
    assert store.reference_info(service).created_at == first  # type: ignore[union-attr]  (unchanged file)
    make_scenario(400, seed=2).frame.to_parquet(path)
    os.utime(path, (time.time() + 5, time.time() + 5))
    sync_configured_references(settings, store)
    assert store.reference_info(service).row_count == 400  # type: ignore[union-attr]
    store.close()


def test_workers_running_the_schedule_together_check_a_window_once(store: Store) -> None:
    """Three workers tick at the same moment: the due window is checked by exactly one of them."""
    from concurrent.futures import ThreadPoolExecutor

    now = time.time()
    window = complete_windows(3600.0, now, 1)[0]
    service = register(store, window=3600.0)
    keep_reference(store, service, make_scenario(500, seed=1).frame)
    ingest(store, service, make_scenario(300, seed=4), start=window.start)
    schedules = [CheckSchedule(store, CheckRunner(store), recheck_windows=2) for _ in range(3)]

    with ThreadPoolExecutor(3) as pool:
        done = [check for checks in pool.map(lambda s: s.tick(now), schedules) for check in checks]
    assert [(c.window_start, c.window_end) for c in done] == [(window.start, window.end)]
    assert len(store.list_checks(service)) == 1
    assert all(s.tick(now) == [] for s in schedules)
