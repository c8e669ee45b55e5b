"""KServe logger events through ``POST /v1/cloudevents``, against ``POST /v1/services/{service}/predictions``.

KServe's logger posts one binary-mode CloudEvent per request and one per response, one
inference at a time, from several workers; so the figure is inferences/s (two events each)
from 4 concurrent clients into a real server on SQLite, against the same inferences posted
as one-record prediction batches (the per-call path an SDK without batching would take) in
the same run. A pair costs more than a prediction call: the first half is committed to the
store and read back before the second pairs it. Shown for information (no target), with the
server's peak RSS.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from benchmarks.harness import Result
from monitor.cloudevents.events import REQUEST, RESPONSE
from tests.conftest import RunningServer, start_server

INFERENCES = 500
CLIENTS = 4
FEATURES = [{"name": f"f{j}"} for j in range(4)]


def _events(i: int) -> list[ce_http.HTTPMessage]:
    attributes = {"source": "http://localhost:9081/", "id": f"inference-{i}", "inferenceservicename": "bench"}
    request = CloudEvent({**attributes, "type": REQUEST}, {"instances": [[0.1 * i, 1.0, 2.0, 3.0]]})
    response = CloudEvent({**attributes, "type": RESPONSE}, {"predictions": [i % 3]})
    return [ce_http.to_binary_event(request), ce_http.to_binary_event(response)]


def _prediction(i: int) -> dict[str, object]:
    features = {"f0": 0.1 * i, "f1": 1.0, "f2": 2.0, "f3": 3.0}
    return {"records": [{"request_id": f"prediction-{i}", "features": features, "prediction": i % 3}]}


def _rate(server: RunningServer, send: object, count: int) -> float:
    """Inferences/s of ``send(client, i)`` for ``i`` in range(count), from CLIENTS threads."""

    def work(part: range) -> None:
        with server.client() as client:
            for i in part:
                send(client, i)  # type: ignore[operator]

    parts = [range(k, count, CLIENTS) for k in range(CLIENTS)]
    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(work, parts))
    return count / (time.perf_counter() - start)


def _send_events(client: httpx.Client, i: int) -> None:
    for message in _events(i):
        client.post("/v1/cloudevents", headers=message.headers, content=message.body).raise_for_status()


def _send_prediction(client: httpx.Client, i: int) -> None:
    client.post("/v1/services/bench/predictions", json=_prediction(i)).raise_for_status()


def _peak_rss_mb(pid: int) -> float | None:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return None
    line = next((ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else None


def run(inferences: int = INFERENCES) -> list[Result]:
    """The two rates on a fresh SQLite store, and the server's peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            with server.client() as client:
                client.post("/v1/services", json={"name": "bench", "features": FEATURES}).raise_for_status()
            baseline = _rate(server, _send_prediction, inferences)
            rate = _rate(server, _send_events, inferences)
            peak = _peak_rss_mb(server.process.pid)
        finally:
            server.stop()
    return [
        Result("API one-record prediction calls, SQLite (inferences/s)", baseline, "/s", ""),
        Result("CloudEvents request+response pairs, SQLite (inferences/s)", rate, "/s", "", baseline, peak),
    ]


def main() -> list[Result]:
    """Run the benchmark (``python -m benchmarks cloudevents``)."""
    return run()
