"""The benchmarks' runner, and their own data generators (which bypass the store for speed)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as runner
from benchmarks import bench_dashboard
from benchmarks.harness import Result
from monitor.store import Store


def test_the_dashboard_benchmark_data_set_reads_back_through_the_store(tmp_path: Path) -> None:
    per_service = 300
    now = bench_dashboard.generate(tmp_path / "dashboard.db", rows=bench_dashboard.SERVICES * per_service)
    store = Store.open(f"sqlite:///{tmp_path / 'dashboard.db'}")
    try:
        service = store.get_service("svc-00")
        start = now - bench_dashboard.DAYS * 86400
        assert store.count_window(service, start, now + 1) == per_service
        sample = store.sample_window(service, start, now + 1, 50)
        assert len(sample) == 50 and len({p.request_id for p in sample}) == 50
        assert store.recent_predictions(service, 5, since=start)[0].ts == store.last_prediction_at(service)
        assert sum(b.count for b in store.traffic_stats(service, start - 60, now + 60, 3600)) == per_service
    finally:
        store.close()


def test_each_benchmark_module_runs_in_an_interpreter_of_its_own_and_reports_back() -> None:
    sys.modules.pop("benchmarks.bench_agent", None)
    results = runner._isolated("bench_agent")
    assert "benchmarks.bench_agent" not in sys.modules  # it ran, and was imported, elsewhere
    # the first name counts the processes it sampled: this one, its parent and every process
    # named "postgres" on the host, whose number changes with the PostgreSQL connections open
    assert re.fullmatch(r"agent: CPU per sample \(host \+ \d+ process/GPU records\)", results[0].name)
    assert [r.name for r in results[1:]] == [
        "agent: CPU per sample when it also rescans names (every 30 s)",
        "agent: CPU of the first sample, which reads every process name",
    ]
    assert all(isinstance(r, Result) and r.value > 0 and r.unit == "ms" and r.target == "<= 5" for r in results)


def test_a_benchmark_that_dies_is_reported_as_a_missed_target() -> None:
    [result] = runner._isolated("bench_no_such_module")
    assert not result.ok
    assert result.name.startswith("bench_no_such_module: exited with status 1")


def test_unknown_benchmark_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["ingest", "nope"]) == 2
    assert "unknown benchmark(s): nope" in capsys.readouterr().out
