"""The proxy as a plain ASGI app over a pool of upstream connections (``monitor.proxy.upstream``).

    >>> app = ProxyApp("http://127.0.0.1:5000", Tracker("credit"))
    >>> uvicorn.run(app, port=8080, loop="uvloop", http="httptools", server_header=False, date_header=False)

Requests and replies pass unchanged: status, headers except hop-by-hop ones, body bytes as
the server sent them (compressed or not; a chunked body is passed de-chunked). A reply that
comes whole is sent whole; one that comes in pieces (large, or streamed like server-sent
events) is passed on piece by piece as it arrives. The reply goes back first; the exchange
is then handed to the tracker's queue and parsed (``monitor.sdk.payloads``) in its sender
thread. An unreachable upstream becomes a 502, a timed-out one a 504, both recorded as
errors; a reply from the upstream, whatever its status, is passed on as it came.

At start the tracker reads the service's registered features, so that values a payload
gives by position (a V1 row list, a V2 tensor) are stored under those names, the same for
every protocol (``monitor.sdk.schema``). A request's id is its V2 ``id``, else its
``X-Request-ID``, else the V2 reply's ``id``: labels sent for that id join its predictions
(``<id>-<row>`` for each row of a request of several).

``GET /mlwatch/metrics`` (``metrics_path``; None: forwarded like any path) is answered by
the proxy itself: its tracker's counters as Prometheus text (``monitor.sdk.metrics``), sent,
spooled, quarantined and dropped records, whatever the sink (API, NATS, MQTT).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from monitor.proxy.upstream import Reply, Upstream, UpstreamError, UpstreamTimeout
from monitor.sdk.tracker import Tracker

log = logging.getLogger("monitor.proxy")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

METRICS_PATH = "/mlwatch/metrics"
"""Where the proxy answers its own counters, unless told otherwise."""
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


class ProxyApp:
    """Forwards every request to ``target``; records those matching ``paths`` and ``methods``."""

    def __init__(
        self,
        target: str,
        tracker: Tracker,
        *,
        paths: Sequence[str] = ("/",),
        methods: Sequence[str] = ("POST",),
        timeout: float = 60.0,
        upstream: Upstream | None = None,
        metrics_path: str | None = METRICS_PATH,
    ) -> None:
        self.target = target.rstrip("/")
        self.tracker = tracker
        self.paths = tuple(paths)
        self.methods = frozenset(m.upper() for m in methods)
        self.upstream = upstream or Upstream(self.target, timeout=timeout)
        self.metrics_path = metrics_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["path"] == self.metrics_path and scope["method"] == "GET":
                await _metrics(self.tracker, send)
                return
            await self._forward(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        body = await _read_body(receive)
        try:
            reply = await self.upstream.request(scope["method"], _target(scope), scope["headers"], body)
        except UpstreamTimeout as exc:
            await _error(send, 504, "upstream_timeout", f"{self.target}: {exc}")
            self._record(scope, body, b"", 504, start, "")
            return
        except UpstreamError as exc:
            await _error(send, 502, "upstream_unreachable", f"{self.target}: {exc}")
            self._record(scope, body, b"", 502, start, "")
            return
        encoding = _header(reply.headers, b"content-encoding")
        if reply.stream is None:
            await _relay(reply, send)
            self._record(scope, body, reply.body, reply.status, start, encoding)
            return
        try:
            kept = await _relay_stream(reply, send)
        except UpstreamError as exc:
            log.warning("mlwatch proxy: %s: %s", self.target, exc)
            self._record(scope, body, b"", 502, start, "")
            raise  # the client's connection is cut, as the upstream's was
        self._record(scope, body, kept, reply.status, start, encoding)

    def _record(self, scope: Scope, body: bytes, reply: bytes, status: int, start: float, encoding: str) -> None:
        if scope["method"] not in self.methods or not scope["path"].startswith(self.paths):
            return
        latency = (time.perf_counter() - start) * 1000.0
        request_id = _header(scope["headers"], b"x-request-id")[:200] or None
        self.tracker.log_exchange(body, reply, status, latency, response_encoding=encoding, request_id=request_id)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.tracker.learn_schema()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.upstream.close()
                self.tracker.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _target(scope: Scope) -> str:
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == name), "")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _relay(reply: Reply, send: Send) -> None:
    """Send the upstream reply as it came (a de-chunked body gets its Content-Length)."""
    headers = [(k, v) for k, v in reply.headers if k.lower() not in HOP_BY_HOP]
    if not any(k.lower() == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(reply.body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _relay_stream(reply: Reply, send: Send, keep_bytes: int = 1024 * 1024) -> bytes:
    """Pass a reply on chunk by chunk as it arrives; return its first ``keep_bytes`` for the record."""
    assert reply.stream is not None
    headers = [(k, v) for k, v in reply.headers if k.lower() not in HOP_BY_HOP]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    kept: list[bytes] = []
    size = 0
    async for chunk in reply.stream:
        if size < keep_bytes:
            kept.append(chunk)
            size += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
    return b"".join(kept) if size <= keep_bytes else b""


async def _metrics(tracker: Tracker, send: Send) -> None:
    from monitor.server.exposition import CONTENT_TYPE

    body = tracker.metrics_text().encode()
    headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, error: str, message: str) -> None:
    log.warning("mlwatch proxy: %s", message)
    body = json.dumps({"error": error, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
