"""How batches leave the process: over HTTP to the ingest API, or straight into a store.

    Retryable      the batch may succeed later (server down, 5xx, timeout): spool and retry
    Rejected       the server refused the batch (4xx): retrying it unchanged cannot help

Both transports take plain JSON-ready record dicts (the API's ``PredictionIn`` shape).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import http.client

Json = dict[str, Any]


class Retryable(Exception):
    """Delivery failed in a way that may pass later."""


class Rejected(Exception):
    """The receiver refused the batch; ``status`` is the HTTP status (422 for validation)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Transport(Protocol):
    """Delivers one batch of prediction records or raises Retryable / Rejected."""

    def send(self, records: Sequence[Json]) -> None: ...

    def close(self) -> None: ...

    def after_fork(self) -> None: ...


class HttpClient:
    """A tiny keep-alive JSON client over ``http.client`` (no third-party import, thread-confined)."""

    def __init__(self, url: str, token: str | None, timeout: float = 5.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8000, got {url!r}")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, payload: Json) -> tuple[int, bytes]:
        """POST ``payload`` as JSON; return status and body. Raises Retryable on transport errors."""
        return self.request("POST", path, json.dumps(payload, allow_nan=False, default=str).encode())

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request on the kept-alive connection; return status and body."""
        reused = self._conn is not None
        try:
            return self._exchange(method, path, body)
        except Retryable:
            if not reused:
                raise
            # the server may have closed the idle connection: once more on a fresh one
            # (safe for predictions: request ids make a re-sent batch a no-op)
            return self._exchange(method, path, body)

    def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        import http.client

        conn = self._conn or self._connect()
        try:
            conn.request(method, self._prefix + path, body, self._headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self.close()
        return response.status, data

    def _connect(self) -> http.client.HTTPConnection:
        import http.client

        kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        self._conn = kind(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        """Drop the pooled connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def check_status(status: int, body: bytes) -> None:
    """Raise Retryable for 408/429/5xx and Rejected for other non-2xx answers."""
    if status < 300:
        return
    if status in (408, 429) or status >= 500:
        raise Retryable(f"HTTP {status}: {_message(body)}")
    raise Rejected(status, _message(body))


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace")
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return json.dumps(data)[:300]


class HttpTransport:
    """Sends batches to ``POST /v1/services/{service}/predictions``."""

    def __init__(self, url: str, token: str | None, service: str, *, timeout: float = 5.0) -> None:
        from urllib.parse import quote

        self._client = HttpClient(url, token, timeout)
        self._path = f"/v1/services/{quote(service, safe='')}/predictions"

    def send(self, records: Sequence[Json]) -> None:
        """Deliver one batch."""
        status, body = self._client.post(self._path, {"records": list(records)})
        check_status(status, body)

    def close(self) -> None:
        """Release the connection."""
        self._client.close()

    def after_fork(self) -> None:
        """In a forked child: never share the parent's connection."""
        self._client.close()


class StoreTransport:
    """Writes batches straight into a store through ``monitor.ingest.Ingestor`` (no API server).

    The store and ingest modules (SQLAlchemy) are imported on first use, in the sender thread.
    """

    def __init__(self, store_url: str, service: str) -> None:
        self._url = store_url
        self._service = service
        self._store: Any = None
        self._ingestor: Any = None

    def send(self, records: Sequence[Json]) -> None:
        """Validate and store one batch."""
        from monitor.errors import NotFound, ValidationFailed

        try:
            store, ingestor = self._open()
            ingestor.predictions(store.get_service(self._service), [_record(r) for r in records])
        except ValidationFailed as exc:
            raise Rejected(422, str(exc)) from exc
        except NotFound as exc:
            raise Rejected(404, str(exc)) from exc
        except Exception as exc:  # a store that is down or locked: keep the batch and retry
            raise Retryable(f"{type(exc).__name__}: {exc}") from exc

    def _open(self) -> tuple[Any, Any]:
        if self._store is None:
            from monitor.ingest import Ingestor
            from monitor.store import Store

            self._store = Store.open(self._url)
            self._ingestor = Ingestor(self._store)
        return self._store, self._ingestor

    def after_fork(self) -> None:
        """In a forked child: open a store of its own; closing the parent's would break its connections."""
        self._store = self._ingestor = None

    def close(self) -> None:
        """Close the store's connections."""
        if self._store is not None:
            self._store.close()
            self._store = None


def _record(data: Json) -> Any:
    from monitor.records import PredictionRecord

    return PredictionRecord(
        request_id=data["request_id"],
        ts=float(data["timestamp"]),
        features=data["features"],
        prediction=data.get("prediction"),
        probabilities=data.get("probabilities"),
        latency_ms=data.get("latency_ms"),
        model_version=data.get("model_version"),
        status=data.get("status", "ok"),
    )
