"""``mlwatch proxy --sink nats://...``: a real proxy process publishing to the real JetStream, and its counters."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.collectors.mlflow_serving import running
from tests.conftest import free_port
from tests.stream.conftest import Stream, wait_for
from tests.stream.test_sink_nats import _add_stream, _stream_records


class _Model(BaseHTTPRequestHandler):
    """A model server that predicts 1 for every row of an ``instances`` body."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._reply(json.dumps({"predictions": [1] * len(body["instances"])}).encode())

    def do_GET(self) -> None:
        self._reply(b'{"upstream": true}')

    def _reply(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def model_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_the_proxy_publishes_each_call_to_the_stream_and_answers_its_counters(
    stream: Stream, model_url: str, tmp_path: Path
) -> None:
    _add_stream(stream)
    port = free_port()
    env = {**os.environ, "MLWATCH_SINK": stream.url, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("MLWATCH_URL", None)
    command = [sys.executable, "-m", "monitor", "proxy", "--target", model_url, "--service", stream.service]
    command += ["--listen", f"127.0.0.1:{port}", "--spool-dir", str(tmp_path / "spool")]
    proxy = f"http://127.0.0.1:{port}"
    with running(command, env, f"{proxy}/mlwatch/metrics", 60), httpx.Client(base_url=proxy, timeout=10) as client:
        replies = [client.post("/v1/models/m:predict", json={"instances": [[1.0, 2.0], [3.0, 4.0]]}) for _ in range(5)]
        assert [r.json() for r in replies] == [{"predictions": [1, 1]}] * 5
        assert client.get("/health").json() == {"upstream": True}  # other paths still go to the model
        sent = f'mlwatch_sdk_sent_records_total{{service="{stream.service}"}} 10'
        wait_for(lambda: sent in client.get("/mlwatch/metrics").text, 10)
        metrics = client.get("/mlwatch/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert f'mlwatch_sdk_dropped_records_total{{service="{stream.service}",reason="queue_full"}} 0' in metrics.text
    records = _stream_records(stream)
    assert len(records) == 10 and {r["prediction"] for r in records} == {1}
    assert sorted(r["features"]["f0"] for r in records) == [1.0] * 5 + [3.0] * 5
