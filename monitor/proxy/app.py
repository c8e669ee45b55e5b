"""The proxy as a plain ASGI app over a pooled ``httpx.AsyncClient``.

    >>> app = ProxyApp("http://127.0.0.1:5000", Tracker("credit"))
    >>> uvicorn.run(app, port=8080, loop="uvloop", http="httptools")

Requests and replies pass unchanged (status, headers except hop-by-hop ones, body bytes as
sent, compressed or not). The reply is streamed back first; the exchange is then handed to
the tracker's queue, and parsed (``monitor.sdk.payloads``) in its sender thread. An
unreachable upstream becomes a 502, a timed-out one a 504, both recorded as errors; the
proxy never turns a good upstream reply into an error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import httpx

from monitor.sdk.tracker import Tracker

log = logging.getLogger("monitor.proxy")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

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
_WHOLE_BYTES = 1024 * 1024  # replies up to this size with a Content-Length are sent in one message
_STREAM = _WHOLE_BYTES + 1


class ProxyApp:
    """Forwards every request to ``target``; records those matching ``paths`` and ``methods``."""

    def __init__(
        self,
        target: str,
        tracker: Tracker,
        *,
        client: httpx.AsyncClient | None = None,
        paths: Sequence[str] = ("/",),
        methods: Sequence[str] = ("POST",),
        timeout: float = 60.0,
        max_connections: int = 100,
    ) -> None:
        self.target = target.rstrip("/")
        self.tracker = tracker
        self.paths = tuple(paths)
        self.methods = frozenset(m.upper() for m in methods)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = client or httpx.AsyncClient(timeout=timeout, limits=limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        body = await _read_body(receive)
        request = self._request(scope, body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            await _error(send, 504, "upstream_timeout", f"{self.target} did not answer in time: {exc!r}")
            self._record(scope, body, b"", 504, start, "")
            return
        except httpx.TransportError as exc:
            await _error(send, 502, "upstream_unreachable", f"cannot reach {self.target}: {exc!r}")
            self._record(scope, body, b"", 502, start, "")
            return
        chunks = await _relay(response, send)
        encoding = response.headers.get("content-encoding", "")
        self._record(scope, body, b"".join(chunks), response.status_code, start, encoding)

    def _request(self, scope: Scope, body: bytes) -> httpx.Request:
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP and k != b"host"]
        query = scope.get("query_string", b"")
        url = self.target + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if query:
            url += "?" + query.decode("latin-1")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        sent = {k.decode("latin-1").lower() for k, _ in headers} | {"host", "content-length"}
        for name in [n for n in request.headers if n not in sent]:
            del request.headers[name]  # the client's own defaults (Accept-Encoding, User-Agent...)
        return request

    def _record(self, scope: Scope, body: bytes, reply: bytes, status: int, start: float, encoding: str) -> None:
        if scope["method"] not in self.methods or not scope["path"].startswith(self.paths):
            return
        latency = (time.perf_counter() - start) * 1000.0
        request_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        self.tracker.log_exchange(
            body, reply, status, latency, response_encoding=encoding, request_id=(request_id or "")[:200] or None
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                self.tracker.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


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


async def _relay(response: httpx.Response, send: Send) -> list[bytes]:
    """Stream the upstream reply to the client byte for byte; return its chunks."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
    chunks: list[bytes] = []
    try:
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        if int(response.headers.get("content-length") or _STREAM) <= _WHOLE_BYTES:
            chunks = [chunk async for chunk in response.aiter_raw()]
            await send({"type": "http.response.body", "body": b"".join(chunks)})
            return chunks
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()
    return chunks


async def _error(send: Send, status: int, error: str, message: str) -> None:
    log.warning("mlwatch proxy: %s", message)
    body = json.dumps({"error": error, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
