"""Proxy overhead: `mlwatch proxy` in front of `mlflow models serve` against calling it directly.

Same payloads, same run, interleaved: added median latency of one client, and throughput
at 8 concurrent clients. The proxy logs every call to a real `mlwatch server`.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil

from benchmarks.harness import Result
from tests.collectors.mlflow_serving import IRIS, proxying, serving, train_iris_model
from tests.conftest import start_server

PAYLOADS = [
    {"dataframe_split": {"columns": IRIS, "data": [[5.1, 3.5, 1.4, 0.2]]}},
    {"dataframe_records": [dict(zip(IRIS, [6.7, 3.0, 5.2, 2.3], strict=True))]},
    {"instances": [[5.9, 3.0, 4.2, 1.5]]},
    {"inputs": [[6.3, 2.9, 5.6, 1.8]]},
]
CLIENTS = 8
ROUNDS = 5


def _paired_latencies(direct: str, proxied: str, rounds: int) -> tuple[list[float], list[float]]:
    """Alternate one call direct, one through the proxy, so both see the same moment of the machine."""
    plain, through = [], []
    with httpx.Client(base_url=direct, timeout=60) as a, httpx.Client(base_url=proxied, timeout=60) as b:
        for i in range(rounds):
            body = PAYLOADS[i % len(PAYLOADS)]
            for client, out in ((a, plain), (b, through)):
                start = time.perf_counter()
                client.post("/invocations", json=body).raise_for_status()
                out.append((time.perf_counter() - start) * 1000.0)
    return plain, through


def _proxy_process(url: str) -> psutil.Process:
    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children(recursive=True):
        cmdline = child.cmdline()
        if "proxy" in cmdline and f"127.0.0.1:{port}" in cmdline:
            return child
    raise RuntimeError(f"no proxy process listening on {url}")


def _cpu_ms(process: psutil.Process) -> float:
    times = process.cpu_times()
    return (times.user + times.system) * 1000.0


def _throughput(url: str, seconds: float) -> float:
    done = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(slot: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < stop:
                http.post("/invocations", json=PAYLOADS[done[slot] % len(PAYLOADS)]).raise_for_status()
                done[slot] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def measure(direct: str, proxied: str) -> list[Result]:
    """Interleaved latency and throughput rounds, direct and through the proxy; the proxy's own CPU."""
    _paired_latencies(direct, proxied, 100)  # warm both paths
    proxy = _proxy_process(proxied)
    cpu_before = _cpu_ms(proxy)
    plain, through = _paired_latencies(direct, proxied, 500)
    cpu_per_call = (_cpu_ms(proxy) - cpu_before) / 500
    direct_rps = proxy_rps = 0.0
    for _ in range(ROUNDS):  # short alternating rounds: the machine's other load hits both alike
        direct_rps += _throughput(direct, 2.0) / ROUNDS
        proxy_rps += _throughput(proxied, 2.0) / ROUNDS
    added = statistics.median(t - p for p, t in zip(plain, through, strict=True))  # per pair: robust to drift
    return [
        Result(
            "proxy: added latency, median of paired calls, 1 client",
            added,
            "ms",
            "<= 0.5",
            baseline=statistics.median(plain),
        ),
        Result(
            f"proxy: throughput vs direct, {CLIENTS} clients (direct {direct_rps:.0f} req/s)",
            100.0 * proxy_rps / direct_rps,
            "%",
            ">= 90",
        ),
        Result("proxy: CPU of the proxy process per call (incl. its sender)", cpu_per_call, "ms", "<= 0.5"),
    ]


def main() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        api = start_server(work, f"sqlite:///{work / 'mlwatch.db'}")
        stack.callback(api.stop)
        with api.client() as client:
            client.post("/v1/services", json={"name": "bench-iris"}).raise_for_status()
        direct = stack.enter_context(serving(train_iris_model(work)))
        proxied = stack.enter_context(
            proxying(direct, "bench-iris", api.url, api.token, work / "spool", "--path", "/invocations")
        )
        results = measure(direct, proxied)
        store_rows = _stored(api.store_url)
    return [
        *results,
        path_cpu(),
        Result("proxy: predictions stored during the run (sanity)", store_rows, "rows", ">= 1000"),
    ]


def _stored(store_url: str) -> int:
    from monitor.store import Store

    time.sleep(2.0)  # the proxy's sender delivers every second
    store = Store.open(store_url)
    try:
        return store.count_window(store.get_service("bench-iris"), 0, time.time() + 60)
    finally:
        store.close()


def path_cpu() -> Result:
    """CPU of the proxy's own code per call (ASGI app + upstream client), without uvicorn, model or load.

    A loopback upstream answers a fixed reply instantly, so what remains is what the proxy adds
    to a call on an idle core; the load-dependent figures above include scheduling on a busy one.
    """
    import asyncio

    return asyncio.run(_path_cpu())


async def _path_cpu() -> Result:
    import asyncio

    from monitor.proxy import ProxyApp
    from monitor.sdk import DeliveryOptions, Tracker

    reply = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 23\r\ncontent-type: application/json\r\n\r\n" + b'{"predictions": [0, 2]}'
    )

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(reply)  # type: ignore[attr-defined]

    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as spool:
        tracker = Tracker(
            "bench",
            url="http://127.0.0.1:9",
            spool_dir=spool,
            flush_at_exit=False,
            options=DeliveryOptions(flush_interval=3600, queue_size=100_000),
        )
        app = ProxyApp(f"http://127.0.0.1:{port}", tracker)
        body = b'{"inputs": [[6.3, 2.9, 5.6, 1.8]]}'
        headers = [(b"host", b"proxy"), (b"content-type", b"application/json"), (b"content-length", b"35")]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/invocations",
            "raw_path": b"/invocations",
            "query_string": b"",
            "headers": headers,
        }

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: object) -> None:
            return None

        calls = 5000
        for _ in range(500):
            await app(scope, receive, send)
        start = time.process_time()
        for _ in range(calls):
            await app(scope, receive, send)
        micros = (time.process_time() - start) / calls * 1e6
        server.close()
    return Result("proxy: CPU of its own code per call (app + upstream client)", micros, "µs", "<= 500")
