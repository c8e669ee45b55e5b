"""WSGI middleware (Flask, Django): time every tracked request and log its payload.

    >>> app.wsgi_app = MlwatchWSGIMiddleware(app.wsgi_app, Tracker("credit"), paths=("/predict",))

The request body is read once and handed on unchanged; the response is recorded when the
server closes it, so streaming answers are timed to their last byte. Parsing happens in
the tracker's sender thread.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from monitor.sdk.routes import TrackedRoutes
from monitor.sdk.tracker import Tracker

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MlwatchWSGIMiddleware(TrackedRoutes):
    """Records each request to ``paths`` (prefixes; default all) with ``methods`` (default POST)."""

    def __init__(self, app: WSGIApp, tracker: Tracker, **routes: Any) -> None:
        super().__init__(tracker, **routes)
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.wants(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        start = time.perf_counter()
        body = _read_body(environ)
        status = [500]

        def capture(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info) if exc_info else start_response(status_line, headers)

        try:
            result = self.app(environ, capture)
        except Exception:
            self._record(environ, body, [], 500, start)
            raise
        return _Recorded(result, lambda chunks: self._record(environ, body, chunks, status[0], start))

    def _record(self, environ: dict[str, Any], body: bytes, chunks: list[bytes], status: int, start: float) -> None:
        latency = (time.perf_counter() - start) * 1000.0
        response = b"".join(chunks)
        self.tracker.log_exchange(
            body if len(body) <= self.max_body_bytes else b"",
            response if len(response) <= self.max_body_bytes else b"",
            status,
            latency,
            request_id=environ.get("HTTP_X_REQUEST_ID"),
        )


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


class _Recorded:
    """The app's response iterable, recording the exchange when the server closes it."""

    def __init__(self, result: Iterable[bytes], on_close: Callable[[list[bytes]], None]) -> None:
        self._result = result
        self._on_close = on_close
        self._chunks: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            self._chunks.append(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close(self._chunks)
