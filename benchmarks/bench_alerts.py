"""Alert evaluation and webhook delivery throughput.

- one tick over 1,000 rules on 100 services (SQLite store with checks, traffic and agent
  samples): target <= 1 s; baseline: the same rules read without the per-tick memo
- delivering 1,000 queued events to a local receiver: target <= 10 s; baseline: one
  sender thread instead of eight
- the same 1,000-rule tick with its receiver grouping by service (group_by): time per tick;
  baseline: the receiver ungrouped
- 10,000 alert notifications fanned out to 4 receivers (routed, rendered, grouped, written to
  the outbox in one transaction, then the due groups flushed): time per notification, target
  <= 1 ms; baseline: the 4 receivers ungrouped (40,000 outbox rows instead of 400)
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

from benchmarks.harness import Result, max_rss_mb, timed, traced_peak_mb
from monitor.alerts.engine import AlertEngine, load_rules
from monitor.alerts.kinds import get_kind
from monitor.alerts.sources import StoreMetricSource
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, Settings, WebhookConfig
from monitor.records import HostSample, PredictionRecord
from monitor.store import Store
from monitor.webhooks.delivery import Deliverer
from monitor.webhooks.events import Event, emit, new_event

SERVICES = 100
RULES_PER_SERVICE = 10
EVENTS = 1000
NOTIFICATIONS = 10_000
FAN_OUT = 4


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
            trigger="schedule", summary=CheckSummary.decode(summary), results={"features": features},
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


def _grouped(settings: Settings, on: bool) -> Settings:
    """``settings`` with every receiver grouping by service (or not)."""
    grouping = {"group_by": ("service",), "group_wait": 30.0} if on else {"group_by": ()}
    return settings.model_copy(update={"webhooks": tuple(h.model_copy(update=grouping) for h in settings.webhooks)})


def _tick_seconds(workdir: Path, grouped: bool) -> tuple[float, float, float]:
    """First tick, steady tick and the peak MB of a tick 35 s on (group_wait over: the groups flush)."""
    store = Store.open(f"sqlite:///{workdir / f'tick-{grouped}.db'}")
    now = time.time()
    engine = AlertEngine(store, _grouped(_fill(store, now), grouped))
    _, first_s = timed(lambda: engine.tick(now))
    _, steady_s = timed(lambda: engine.tick(now + 5))
    _, peak = traced_peak_mb(lambda: engine.tick(now + 35))
    store.close()
    return first_s, steady_s, peak


def bench_grouped_tick(workdir: Path) -> list[Result]:
    on_first, on_steady, peak = _tick_seconds(workdir, grouped=True)
    off_first, off_steady, _ = _tick_seconds(workdir, grouped=False)
    name = f"alerts: tick, {SERVICES * RULES_PER_SERVICE} rules, receiver grouped by service"
    return [
        Result(f"{name}, first", on_first, "s", "<= 1", baseline=off_first),
        Result(f"{name}, steady", on_steady, "s", "<= 1", baseline=off_steady, peak_mb=peak),
    ]


def _notifications(store: Store, now: float, count: int) -> list[Event]:
    """``count`` firing alerts (stored, so that groups find them) over ``SERVICES`` services, and their events."""
    events = []
    with store.write_transaction() as conn:
        for i in range(count):
            service, rule = f"svc-{i % SERVICES:03d}", f"feature-{i // SERVICES:03d}"
            labels = {"rule": rule, "kind": "feature_drift", "severity": "warning", "service": service}
            values = {
                "fingerprint": f"{i:064d}", "rule": rule, "kind": "feature_drift", "service": service,
                "state": "firing", "severity": "warning", "labels": labels, "summary": f"{service}: drifted",
                "started_at": now, "fired_at": now, "value": 0.3, "threshold": 0.1,
            }  # fmt: skip
            alert_id = store.insert_alert(conn, values)
            data = {**values, "id": alert_id, "repeat_interval": 14400.0}
            events.append(new_event("alert.firing", data, severity="warning", labels=labels, clock=lambda: now))
    return events


def _fan_out(workdir: Path, grouped: bool, count: int) -> tuple[float, float, int]:
    """Seconds to notify and then flush ``count`` events to 4 receivers, the process's peak RSS, outbox rows."""
    store = Store.open(f"sqlite:///{workdir / f'fan-out-{grouped}.db'}")
    hooks = [
        WebhookConfig.model_validate({"name": f"r{i}", "url": f"http://127.0.0.1:9/{i}", "format": f})
        for i, f in enumerate(_FORMATS)
    ]
    settings = _grouped(Settings(webhooks=tuple(hooks)), grouped)
    now = time.time()
    events = _notifications(store, now, count)
    engine = AlertEngine(store, settings)

    def notify() -> None:
        with store.write_transaction() as conn:
            engine.notify(conn, events, now)
        with store.write_transaction() as conn:
            engine.notify(conn, [], now + 31)  # group_wait over: the groups flush

    _, seconds = timed(notify)  # not under tracemalloc, which triples the time of this many small objects
    rows = sum(store.delivery_counts().values())
    store.close()
    return seconds, max_rss_mb(), rows


_FORMATS = ("json", "slack", "msteams", "alertmanager")


def bench_fan_out(workdir: Path, count: int = NOTIFICATIONS) -> list[Result]:
    """Per notification, grouped by service against ungrouped; ``count`` is smaller in the smoke test."""
    off, _, off_rows = _fan_out(workdir, grouped=False, count=count)
    on, peak, on_rows = _fan_out(workdir, grouped=True, count=count)
    assert on_rows == min(count, SERVICES) * FAN_OUT and off_rows == count * FAN_OUT, (on_rows, off_rows)
    name = f"alerts: {count} notifications to {FAN_OUT} receivers grouped by service, per notification"
    per = 1000 / count
    return [Result(name, on * per, "ms", "<= 1", baseline=off * per, peak_mb=peak)]


def main() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        return bench_tick(work) + bench_grouped_tick(work) + bench_fan_out(work) + bench_delivery(work)
