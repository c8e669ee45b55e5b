"""ASGI middleware (FastAPI, Starlette): time every tracked request and log its payload.

    >>> app.add_middleware(MlwatchASGIMiddleware, tracker=Tracker("credit"), paths=("/predict",))

The bodies are captured by reference as they stream; parsing them (``monitor.sdk.payloads``)
happens in the tracker's sender thread, never on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from monitor.sdk.routes import TrackedRoutes
from monitor.sdk.tracker import Tracker

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MlwatchASGIMiddleware(TrackedRoutes):
    """Records each request to ``paths`` (prefixes; default all) with ``methods`` (default POST)."""

    def __init__(self, app: ASGIApp, tracker: Tracker, **routes: Any) -> None:
        super().__init__(tracker, **routes)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.wants(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(receive, send, self.max_body_bytes)
        start = time.perf_counter()
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception:
            exchange.status = 500
            raise
        finally:
            latency = (time.perf_counter() - start) * 1000.0
            self.tracker.log_exchange(
                exchange.body(exchange.request),
                exchange.body(exchange.response),
                exchange.status,
                latency,
                request_id=_header(scope, b"x-request-id"),
            )


class _Exchange:
    """Wraps receive/send to keep references to the body chunks and the status."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self._limit = receive, send, limit
        self.request: list[bytes] = []
        self.response: list[bytes] = []
        self.status = 500

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.request.append(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.response.append(message.get("body", b""))
        await self._send(message)

    def body(self, chunks: list[bytes]) -> bytes:
        data = b"".join(chunks)
        return data if len(data) <= self._limit else b""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")[:200] or None
    return None
