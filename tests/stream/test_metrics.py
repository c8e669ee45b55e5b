"""Consumer heartbeats: kept by the store on each backend, and exported by a real server's /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from monitor.store import Store
from monitor.store.consumers import ConsumerStatus
from monitor.stream.heartbeat import LAG_BOUNDS_S, Heartbeat, LagHistogram, quantile
from tests.conftest import RunningServer
from tests.stream.conftest import Consuming, Stream, register, wait_for


def test_a_heartbeat_replaces_the_consumers_last_one_and_old_ones_are_forgotten(store: Store) -> None:
    first = ConsumerStatus("a:1", "S", "d", started_at=100.0, updated_at=101.0, stored=5, pending=7)
    store.record_consumer(first)
    store.record_consumer(ConsumerStatus("b:2", "S", "d", 100.0, 50.0, stored=1))
    later = ConsumerStatus(
        "a:1", "S", "d", 100.0, 160.0, consumed=3, stored=9, lag_buckets=(1, 2, 0), lag_sum=0.5, lag_last=0.25
    )
    store.record_consumer(later)
    assert store.stream_consumers(since=100.0) == [later]
    assert [c.consumer for c in store.stream_consumers(since=0)] == ["a:1", "b:2"]
    assert store.forget_consumers(before=100.0) == 1
    assert store.stream_consumers(since=0) == [later]


def test_a_heartbeat_counts_the_rate_since_the_previous_one_and_the_lag_per_bucket() -> None:
    now = [1000.0]
    written: list[ConsumerStatus] = []
    beat = Heartbeat(written.append, "S", "d", name="h:1", interval=5, clock=lambda: now[0])
    lag = LagHistogram()
    lag.observe([0.005, 0.3, 0.3, 7.0])
    counters = {"consumed": 4, "stored": 30, "duplicates": 10, "dead_lettered": 1, "retried": 0, "redelivered": 2}
    now[0] = 1004.0
    assert not beat.due()
    now[0] = 1010.0
    assert beat.due()
    beat.beat(beat.status(counters, lag, pending=12))
    [status] = written
    assert (status.records_per_second, status.pending, status.stored, status.dead_lettered) == (4.0, 12, 30, 1)
    assert status.lag_count == 4 and status.lag_last == 7.0 and len(status.lag_buckets) == len(LAG_BOUNDS_S) + 1
    assert quantile(status.lag_buckets, 0.5) == 0.5 and quantile(status.lag_buckets, 0.99) == 10.0
    assert not beat.due()


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of the samples of ``name`` in an exposition."""
    found = re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, flags=re.M)
    return {labels: float(value) for labels, value in found}


def test_two_consumers_share_a_durable_and_the_servers_metrics_show_each_one(
    sqlite_url: str, server: RunningServer, stream: Stream, consumers: Callable[..., Consuming]
) -> None:
    store = register(sqlite_url, stream.service)
    args = ("--durable", "pool", "--batch", "5", "--heartbeat", "0.2")
    first = consumers(sqlite_url, stream, *args)
    first.wait_started()  # it creates the stream and the durable consumer; the second binds to them
    second = consumers(sqlite_url, stream, *args)
    second.wait_started()
    records = [{"request_id": f"r{i}", "features": {"x": i}} for i in range(2000)]
    bodies = [json.dumps({"records": records[i : i + 10]}).encode() for i in range(0, 2000, 10)]
    stream.publish(f"predictions.{stream.service}", bodies)
    service = store.get_service(stream.service)
    wait_for(lambda: store.count_window(service, 0, 2e9) == 2000, 30, lambda: first.describe() + second.describe())
    one, two = first.stop(), second.stop()  # each writes its last heartbeat as it stops
    assert store.count_window(service, 0, 2e9) == 2000 and one["stored"] + two["stored"] == 2000
    assert one["stored"] > 0 and two["stored"] > 0, (one, two)

    with server.client() as client:
        text = client.get("/metrics").text
    stored = _samples(text, "mlwatch_stream_records_total")
    mine = {labels: value for labels, value in stored.items() if f'stream="{stream.name}"' in labels}
    assert len(mine) == 2 and all('durable="pool"' in labels for labels in mine)
    assert sorted(mine.values()) == sorted([float(one["stored"]), float(two["stored"])])
    counts = _samples(text, "mlwatch_stream_lag_seconds_count")
    assert sum(v for labels, v in counts.items() if stream.name in labels) == 200  # every message's lag
    infinite = _samples(text, "mlwatch_stream_lag_seconds_bucket")
    assert sum(v for labels, v in infinite.items() if stream.name in labels and 'le="+Inf"' in labels) == 200
    assert _samples(text, "mlwatch_stream_pending_messages")[f'stream="{stream.name}",durable="pool"'] == 0
    dead = _samples(text, "mlwatch_stream_dead_letters_total")
    assert [v for labels, v in dead.items() if stream.name in labels] == [0.0, 0.0]
    assert "# TYPE mlwatch_stream_lag_seconds histogram" in text
    store.close()
