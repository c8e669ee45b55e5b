"""The benchmarks' own data generators write what the store reads (they bypass it for speed)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_dashboard
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
