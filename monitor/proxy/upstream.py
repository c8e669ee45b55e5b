"""A pool of keep-alive HTTP/1.1 connections to one model server, parsed with httptools.

A general HTTP client (httpx) costs about 1.5 ms of CPU per request on these machines,
more than the model it fronts; this one costs a few tens of microseconds, and does only
what a reverse proxy needs: send a request, read back status, raw headers and body (a
chunked body de-chunked, a compressed one left compressed).

    UpstreamError          the server could not be reached or broke the connection
    └── UpstreamTimeout    no complete reply within the timeout
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

Headers = list[tuple[bytes, bytes]]
_NOT_FORWARDED = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"proxy-connection",
    }
)


class UpstreamError(Exception):
    """The upstream server could not be reached or closed the connection mid-reply."""


class UpstreamTimeout(UpstreamError):
    """The upstream server did not answer in time."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An upstream reply: status, headers as received, and the body (or its stream, when it came in pieces)."""

    status: int
    headers: Headers
    body: bytes
    stream: BodyStream | None = None


class BodyStream:
    """The body of a reply that did not arrive with its headers (a large or streamed one), chunk by chunk."""

    def __init__(self, first: bytes, timeout: float) -> None:
        self._queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        self._timeout = timeout
        if first:
            self._queue.put_nowait(first)

    def push(self, item: bytes | Exception | None) -> None:
        """Add a chunk, the end (None), or the error that cut the reply."""
        self._queue.put_nowait(item)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    item = await self._queue.get()
            except TimeoutError as exc:
                raise UpstreamTimeout(f"no data for {self._timeout:g}s in the middle of a reply") from exc
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item


class Upstream:
    """Sends requests to one origin over pooled connections."""

    def __init__(self, url: str, *, timeout: float = 60.0, max_idle: int = 100) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:5000, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_header = parts.netloc.encode("latin-1")
        self._idle: list[_Connection] = []
        self._max_idle = max_idle

    async def request(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> Reply:
        """Send one request; raise UpstreamTimeout or UpstreamError when no reply comes."""
        data = self._encode(method, target, headers, body)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(data, method == "HEAD", self.timeout)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no reply from {self.host}:{self.port} within {self.timeout:g}s") from exc

    async def _exchange(self, data: bytes, head_only: bool, timeout: float) -> Reply:
        while self._idle:
            conn = self._idle.pop()
            if conn.open:
                try:
                    return self._keep(conn, await conn.exchange(data, head_only, timeout))
                except _Stale:
                    continue  # the server closed this idle connection before reading: take another
        conn = await self._connect()
        try:
            return self._keep(conn, await conn.exchange(data, head_only, timeout))
        except _Stale as exc:
            raise UpstreamError(f"{self.host}:{self.port} closed the connection without a reply") from exc

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                _Connection, self.host, self.port, ssl=self._ssl, server_hostname=self.host if self._ssl else None
            )
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    def _keep(self, conn: _Connection, reply: Reply) -> Reply:
        if reply.stream is not None:
            return reply  # the connection closes itself when the stream ends
        if conn.reusable and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.close()
        return reply

    def _encode(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
        lines = [
            f"{method} {self.base_path}{target} HTTP/1.1\r\n".encode("latin-1"),
            b"host: ",
            self._host_header,
            b"\r\n",
        ]
        for name, value in headers:
            if name.lower() not in _NOT_FORWARDED:
                lines += [name, b": ", value, b"\r\n"]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"content-length: %d\r\n" % len(body))
        lines += [b"\r\n", body]
        return b"".join(lines)

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._idle.pop().close()


BUFFER_BYTES = 1024 * 1024
"""Replies with a Content-Length up to this are read whole before they are passed on."""


def _int(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class _Stale(Exception):
    """The connection closed before any byte of the reply came."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.open = False
        self.reusable = False
        self._waiter: asyncio.Future[Reply] | None = None
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._received = False
        self._head_only = False
        self._headers_done = False
        self._stream: BodyStream | None = None
        self._timeout = 60.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    async def exchange(self, data: bytes, head_only: bool, timeout: float) -> Reply:
        self._waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._received, self._headers_done = [], [], False, False
        self._head_only, self._timeout, self._stream = head_only, timeout, None
        assert self.transport is not None
        self.transport.write(data)
        try:
            return await self._waiter
        except BaseException:
            self.close()  # cancelled or failed mid-exchange: never reuse
            raise

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"unreadable reply: {exc}"))
            return
        if (
            self._headers_done
            and self._stream is None
            and self._waiter is not None
            and not self._waiter.done()
            and not self._small_body()
        ):
            # the headers came but not the whole of a large or open-ended body: hand the reply
            # on now, the body as it comes
            self._stream = BodyStream(b"".join(self._body), self._timeout)
            self._body = []
            self._waiter.set_result(Reply(self.parser.get_status_code(), self._headers, b"", self._stream))

    def _small_body(self) -> bool:
        """A body of known length up to ``BUFFER_BYTES``: wait for it whole, which keeps the
        connection pooled; servers often send the headers and the body in two writes."""
        length = next((_int(v) for k, v in self._headers if k.lower() == b"content-length"), None)
        return length is not None and length <= BUFFER_BYTES

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head_only:
            self._complete(reusable=False)

    def on_body(self, body: bytes) -> None:
        if self._stream is not None:
            self._stream.push(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete(reusable=self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._stream is not None:
            ended = self._headers_done and self.parser.should_keep_alive() is False
            self._stream.push(None if ended else UpstreamError(f"connection closed mid-reply: {exc or 'EOF'}"))
            self._stream = None
            return
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and self.parser.should_keep_alive() is False:
            self._complete(reusable=False)  # a body delimited by the end of the connection
        elif not self._received:
            self._waiter.set_exception(_Stale())
        else:
            self._fail(UpstreamError(f"connection closed mid-reply: {exc or 'EOF'}"))

    def _complete(self, *, reusable: bool) -> None:
        if self._stream is not None:
            self._stream.push(None)
            self._stream = None
            self.close()  # a streamed reply's connection is not pooled
            return
        self.reusable = reusable and self.open
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Reply(self.parser.get_status_code(), self._headers, b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        if self._stream is not None:
            self._stream.push(exc)
            self._stream = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()
