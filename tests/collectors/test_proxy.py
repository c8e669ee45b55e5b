"""`mlwatch proxy` in front of a real `mlflow models serve`, logging to a real `mlwatch server`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from monitor.proxy import ProxyApp
from monitor.records import StoredPrediction
from monitor.sdk import DeliveryOptions, Tracker
from tests.collectors.conftest import register, stored
from tests.collectors.mlflow_serving import IRIS, proxying, serving, train_iris_model
from tests.conftest import RunningServer, free_port

SETOSA, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]
PAYLOADS = [
    {"dataframe_split": {"columns": IRIS, "data": [SETOSA, VIRGINICA]}},
    {"dataframe_records": [dict(zip(IRIS, VIRGINICA, strict=True))]},
    {"instances": [VIRGINICA, SETOSA]},
    {"inputs": [SETOSA]},
]


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(train_iris_model(tmp_path_factory.mktemp("model"))) as url:
        yield url


@pytest.fixture(scope="module")
def proxy_url(mlflow_url: str, api: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    register(api, "iris")  # no registered features: the `inputs` tensor rows arrive as f0..f3
    with proxying(
        mlflow_url, "iris", api.url, api.token, tmp_path_factory.mktemp("spool"), "--path", "/invocations"
    ) as url:
        yield url


def _wait_stored(api: RunningServer, service: str, count: int, timeout: float = 20.0) -> list[StoredPrediction]:
    deadline = time.monotonic() + timeout
    while True:
        rows = stored(api, service)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_every_request_is_answered_exactly_as_without_the_proxy_and_every_row_is_stored(
    api: RunningServer, mlflow_url: str, proxy_url: str
) -> None:
    bodies = [*PAYLOADS, {"not": "a scoring request"}]
    with httpx.Client(base_url=mlflow_url) as direct, httpx.Client(base_url=proxy_url) as proxied:
        for body in bodies:
            want = direct.post("/invocations", json=body, headers={"Accept-Encoding": "identity"})
            got = proxied.post("/invocations", json=body, headers={"Accept-Encoding": "identity"})
            assert (got.status_code, got.content) == (want.status_code, want.content)
            assert got.headers["content-type"] == want.headers["content-type"]
        assert proxied.get("/ping").status_code == direct.get("/ping").status_code == 200
    rows = _wait_stored(api, "iris", 7)
    seen = [(r.request_id, r.features, r.prediction, r.status) for r in rows]
    named = [r for r in rows if "sepal length (cm)" in r.features]
    assert [([r.features[n] for n in IRIS], r.prediction) for r in named] == [
        (SETOSA, 0),
        (VIRGINICA, 2),
        (VIRGINICA, 2),
    ], seen
    tensor = [r for r in rows if "f0" in r.features]
    assert [(list(r.features.values()), r.prediction) for r in tensor] == [
        (VIRGINICA, 2),
        (SETOSA, 0),
        (SETOSA, 0),
    ], seen
    assert all(r.latency_ms is not None and r.latency_ms > 0 and r.status == "ok" for r in named + tensor)
    [refused] = [r for r in rows if r.status == "error"]
    assert refused.features == {"not": "a scoring request"} and refused.prediction is None
    assert len(rows) == 7


def _iris_rule(row: list[float]) -> int:
    return 0 if row[2] < 2.5 else 2  # setosa by its petal length, else virginica


def _kserve_protocols() -> Starlette:
    """A model server speaking KServe's V1 and the Open Inference Protocol (V2), as KServe answers them."""

    async def v1(request: Request) -> Response:
        rows = (await request.json())["instances"]
        return JSONResponse({"predictions": [_iris_rule(r) for r in rows]})

    async def v2(request: Request) -> Response:
        body = await request.json()
        [tensor] = body["inputs"]
        n, k = tensor["shape"]
        rows = [tensor["data"][i * k : (i + 1) * k] for i in range(n)]
        output = {"name": "output-0", "shape": [n], "datatype": "INT64", "data": [_iris_rule(r) for r in rows]}
        return JSONResponse({"model_name": "iris", "id": body.get("id", "made-by-server"), "outputs": [output]})

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/v1/models/iris:predict", v1, methods=["POST"]),
            Route("/v2/models/iris/infer", v2, methods=["POST"]),
            Route("/ping", ping),
        ]
    )


@pytest.fixture(scope="module")
def kserve_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_kserve_protocols(), port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _v2(request_id: str | None, *rows: list[float]) -> dict[str, object]:
    tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": [x for r in rows for x in r]}
    return {"inputs": [tensor], **({"id": request_id} if request_id else {})}


def test_v1_rows_and_v2_tensors_are_stored_under_the_registered_names_and_a_v2_id_joins_its_labels(
    api: RunningServer, kserve_url: str, tmp_path: Path
) -> None:
    register(api, "iris-named", IRIS)  # before the proxy starts: it reads the schema then
    with proxying(kserve_url, "iris-named", api.url, api.token, tmp_path) as url, httpx.Client(base_url=url) as client:
        calls = [
            ("/v1/models/iris:predict", {"instances": [SETOSA, VIRGINICA]}, {"X-Request-ID": "v1-call"}),
            ("/v2/models/iris/infer", _v2("v2-call", SETOSA, VIRGINICA), {"X-Request-ID": "not-this"}),
            ("/v2/models/iris/infer", _v2("v2-one", VIRGINICA), {}),
        ]
        replies = [client.post(path, json=body, headers=headers) for path, body, headers in calls]
        assert [r.status_code for r in replies] == [200, 200, 200]
        rows = _wait_stored(api, "iris-named", 5)
    named = {r.request_id: (r.features, r.prediction) for r in rows}
    setosa, virginica = dict(zip(IRIS, SETOSA, strict=True)), dict(zip(IRIS, VIRGINICA, strict=True))
    assert named == {
        "v1-call-0": (setosa, 0),
        "v1-call-1": (virginica, 2),
        "v2-call-0": (setosa, 0),
        "v2-call-1": (virginica, 2),
        "v2-one": (virginica, 2),
    }
    labels = [{"request_id": "v2-call-1", "label": 2}, {"request_id": "v2-one", "label": 1}]
    with api.client() as client:
        client.post("/v1/services/iris-named/labels", json={"labels": labels}).raise_for_status()
    joined = {r.request_id: r.label for r in stored(api, "iris-named") if r.has_label}
    assert joined == {"v2-call-1": 2, "v2-one": 1}


class _Stalling:
    """An upstream that accepts connections and never answers."""

    def __init__(self) -> None:
        self.port = free_port()

    async def serve(self, ready: threading.Event, stop: threading.Event) -> None:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)

        server = await asyncio.start_server(hold, "127.0.0.1", self.port)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()


@pytest.fixture
def stalling_upstream() -> Iterator[str]:
    stall, ready, stop = _Stalling(), threading.Event(), threading.Event()
    thread = threading.Thread(target=asyncio.run, args=(stall.serve(ready, stop),), daemon=True)
    thread.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{stall.port}"
    stop.set()
    thread.join(10)


def _run_proxy(app: ProxyApp) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical", lifespan="off", server_header=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)  # not an HTTP probe: it would go through to the upstream
    return f"http://127.0.0.1:{port}", server, thread


def test_unreachable_and_timed_out_upstreams_become_502_and_504_recorded_as_errors(
    api: RunningServer, stalling_upstream: str, tmp_path: Path
) -> None:
    register(api, "broken-upstream")
    tracker = Tracker(
        "broken-upstream",
        url=api.url,
        token=api.token,
        spool_dir=tmp_path,
        options=DeliveryOptions(flush_interval=0.05),
        flush_at_exit=False,
    )
    dead = ProxyApp(f"http://127.0.0.1:{free_port()}", tracker)
    slow = ProxyApp(stalling_upstream, tracker, timeout=0.5)
    answers = []
    for app in (dead, slow):
        url, server, thread = _run_proxy(app)
        answers.append(httpx.post(f"{url}/invocations", json=PAYLOADS[1], timeout=10))
        server.should_exit = True
        thread.join(10)
    assert [a.status_code for a in answers] == [502, 504]
    assert [a.json()["error"] for a in answers] == ["upstream_unreachable", "upstream_timeout"]
    assert tracker.flush(10)
    rows = stored(api, "broken-upstream")
    assert [(r.status, r.prediction) for r in rows] == [("error", None), ("error", None)]
    assert rows[1].latency_ms is not None and rows[1].latency_ms >= 500
    tracker.close()


class _LoopbackUpstream:
    """An HTTP upstream written by hand on a loopback port, run in a thread by ``_running``."""

    def __init__(self) -> None:
        self.port = free_port()

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def serve(self, ready: threading.Event, stop: threading.Event) -> None:
        server = await asyncio.start_server(self.answer, "127.0.0.1", self.port)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()


@contextmanager
def _running(upstream: _LoopbackUpstream) -> Iterator[str]:
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=asyncio.run, args=(upstream.serve(ready, stop),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{upstream.port}"
    finally:
        stop.set()
        thread.join(10)


class _Streaming(_LoopbackUpstream):
    """An upstream that streams server-sent events in chunks, 0.3 s apart (optionally cut before the end)."""

    def __init__(self, cut: bool = False) -> None:
        super().__init__()
        self.cut = cut

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(3):
            event = f"data: token-{i}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.3)
        if not self.cut:
            writer.write(b"0\r\n\r\n")
        writer.close()


@pytest.fixture(params=[False, True], ids=["whole", "cut"])
def streaming_upstream(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    with _running(_Streaming(cut=request.param)) as url:
        yield url, request.param


def test_a_streamed_reply_is_passed_on_as_it_comes_and_a_cut_one_is_cut_and_recorded_as_an_error(
    api: RunningServer, streaming_upstream: tuple[str, bool], tmp_path: Path
) -> None:
    upstream, cut = streaming_upstream
    service = "stream-cut" if cut else "stream-whole"
    register(api, service)
    tracker = Tracker(
        service,
        url=api.url,
        token=api.token,
        spool_dir=tmp_path,
        flush_at_exit=False,
        options=DeliveryOptions(flush_interval=0.05),
    )
    url, server, thread = _run_proxy(ProxyApp(upstream, tracker))
    arrivals, received = [], b""
    start = time.perf_counter()
    try:
        with httpx.stream("POST", f"{url}/generate", json={"prompt": "hi"}, timeout=10) as reply:
            for chunk in reply.iter_raw():
                arrivals.append(time.perf_counter() - start)
                received += chunk
    except httpx.RemoteProtocolError:
        assert cut
    finally:
        server.should_exit = True
        thread.join(10)
    assert arrivals[0] < 0.25 < 0.6 < arrivals[-1]  # the first event came before the last was sent
    assert received == b"data: token-0\n\ndata: token-1\n\ndata: token-2\n\n"
    assert tracker.flush(10)
    [row] = stored(api, service)
    assert (row.status, row.features) == (("error", {"prompt": "hi"}) if cut else ("ok", {"prompt": "hi"}))
    assert row.latency_ms is not None and row.latency_ms >= 600
    tracker.close()


class _SplitWrites(_LoopbackUpstream):
    """A keep-alive upstream that sends a reply's headers and its body in two writes, 50 ms apart."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(b'{"predictions": [2]}')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def test_a_reply_whose_body_comes_after_its_headers_is_passed_whole_on_a_pooled_connection(
    api: RunningServer, tmp_path: Path
) -> None:
    upstream = _SplitWrites()
    register(api, "split-writes")
    tracker = Tracker("split-writes", url=api.url, token=api.token, spool_dir=tmp_path, flush_at_exit=False)
    with _running(upstream) as upstream_url:
        url, server, proxy_thread = _run_proxy(ProxyApp(upstream_url, tracker))
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                replies = [client.post("/invocations", json={"inputs": [[1.0, 2.0]]}) for _ in range(3)]
        finally:
            server.should_exit = True
            proxy_thread.join(10)
    assert [(r.status_code, r.headers["content-length"], r.json()) for r in replies] == [
        (200, "20", {"predictions": [2]})
    ] * 3
    assert upstream.connections == 1  # kept alive between the three calls, not one connection each
    assert tracker.flush(10)
    assert [r.prediction for r in stored(api, "split-writes")] == [2, 2, 2]
    tracker.close()
