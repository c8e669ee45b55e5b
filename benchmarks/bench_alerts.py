"""Alert evaluation and webhook delivery throughput.

- one tick over 1,000 rules on 100 services (SQLite store with checks, traffic and agent
  samples): target <= 1 s; baseline: the same rules read without the per-tick memo
- delivering 1,000 queued events to a local receiver: target <= 10 s; baseline: one
  sender thread instead of eight
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import Result, timed, traced_peak_mb
from monitor.alerts.engine import AlertEngine, load_rules
from monitor.alerts.kinds import get_kind
from monitor.alerts.sources import StoreMetricSource
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.records import HostSample, PredictionRecord
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import emit

SERVICES = 100
RULES_PER_SERVICE = 10
EVENTS = 1000


def _rules(service: str, i: int) -> list[dict[str, Any]]:
    base = {"service": service}
    return [
        {**base, "name": f"{service}-share", "kind": "drift_share", "threshold": 0.3 + (i % 3) * 0.2},
        {**base, "name": f"{service}-income", "kind": "feature_drift", "feature": "income"},
        {**base, "name": f"{service}-pred", "kind": "prediction_drift"},
        {**base, "name": f"{service}-f1", "kind": "quality_decay", "metric": "f1", "threshold": 0.05},
        {
            **base,
            "name": f"{service}-f1-est",
            "kind": "quality_decay",
            "threshold": 0.1,
            "options": {"source": "estimated"},
        },
        {**base, "name": f"{service}-p95", "kind": "latency", "threshold": 200, "for": "5m"},
        {**base, "name": f"{service}-p99", "kind": "latency", "metric": "p99", "threshold": 500},
        {**base, "name": f"{service}-errors", "kind": "error_rate", "threshold": 0.05},
        {**base, "name": f"{service}-silent", "kind": "no_data", "threshold": 10},
        {"name": f"host-{i}-cpu", "kind": "resource", "metric": "cpu_percent", "host": f"node-{i}", "threshold": 90},
    ]


def _status(j: int) -> str:
    return "error" if j % 17 == 0 else "ok"


def _fill(store: Store, now: float) -> Settings:
    summary = {
        "drift_share": 0.4,
        "drifted_features": ["income"],
        "prediction_drift": {"method": "psi", "score": 0.2, "threshold": 0.1, "drifted": True},
        "decay": {"f1": {"absolute": 0.08, "relative": 0.1}},
        "estimated_decay": {"f1": {"absolute": 0.02, "relative": 0.03}},
    }
    features = [{"name": "income", "method": "wasserstein", "score": 0.3, "threshold": 0.1, "drifted": True}]
    rules = []
    for i in range(SERVICES):
        name = f"svc-{i:03d}"
        service = store.upsert_service(name, task="classification")
        store.add_check(
            service, window_start=now - 3600, window_end=now, model_version="1", status="ok",
            trigger="schedule", summary=summary, results={"features": features},
        )  # fmt: skip
        records = [
            PredictionRecord(f"r{j}", now - 200 + j, {"x": 1.0}, 1, None, 50.0 + j * (i % 7), "1", _status(j))
            for j in range(100)
        ]
        store.add_predictions(service, records)
        store.add_host_samples(f"node-{i}", [HostSample(now - 30, "host", "", {"cpu_percent": 50.0 + i % 60})])
        rules += _rules(name, i)
    hook = WebhookConfig(name="ops", url="http://127.0.0.1:9/hook")  # firing alerts also write their outbox rows
    return Settings(alerts=tuple(AlertRuleConfig.model_validate(r) for r in rules), webhooks=(hook,))


def _unmemoized(store: Store, now: float) -> int:
    """Every rule with a source of its own: what the per-tick memo saves."""
    count = 0
    for rule in load_rules(store):
        count += len(get_kind(rule.kind).evaluate(rule, StoreMetricSource(store), now))
    return count


def bench_tick(workdir: Path) -> list[Result]:
    store = Store.open(f"sqlite:///{workdir / 'alerts.db'}")
    now = time.time()
    settings = _fill(store, now)
    engine = AlertEngine(store, settings)
    first, first_s = timed(lambda: engine.tick(now))
    steady, steady_s = timed(lambda: engine.tick(now + 5))
    _, peak = traced_peak_mb(lambda: engine.tick(now + 10))
    _, naive_s = timed(lambda: _unmemoized(store, now + 5))
    store.close()
    assert first.rules == SERVICES * RULES_PER_SERVICE and steady.changes < first.changes
    name = f"alerts: tick, {first.rules} rules / {SERVICES} services"
    return [
        Result(f"{name}, first ({first.changes} changes)", first_s, "s", "<= 1"),
        Result(f"{name}, steady", steady_s, "s", "<= 1", baseline=naive_s, peak_mb=peak),
    ]


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


@contextmanager
def _receiver() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _deliver_all(workdir: Path, url: str, concurrency: int) -> float:
    store = Store.open(f"sqlite:///{workdir / f'outbox-{concurrency}.db'}")
    settings = Settings(webhooks=(WebhookConfig(name="bench", url=url, secret_env="BENCH_SECRET"),))
    for i in range(EVENTS):
        emit(store, settings, "test", {"n": i})
    deliverer = Deliverer(
        store, settings, environ={"BENCH_SECRET": "whsec_aHVudGVyMg=="}, http=httpx.Client(), concurrency=concurrency
    )
    _, seconds = timed(lambda: deliverer.drain(budget_seconds=120))
    delivered = store.delivery_counts()["delivered"]
    store.close()
    assert delivered == EVENTS, f"only {delivered} of {EVENTS} delivered"
    return seconds


def bench_delivery(workdir: Path) -> list[Result]:
    with _receiver() as url:
        parallel = _deliver_all(workdir, url, concurrency=8)
        serial = _deliver_all(workdir, url, concurrency=1)
    return [
        Result(f"webhooks: deliver {EVENTS} queued signed events (8 senders)", parallel, "s", "<= 10", baseline=serial)
    ]


def main() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        return bench_tick(Path(tmp)) + bench_delivery(Path(tmp))
