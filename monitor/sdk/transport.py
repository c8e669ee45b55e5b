"""How batches leave the process: over HTTP to the ingest API, or straight into a store.

    Retryable          the batch may pass later (server away, timeout, 408, 429, 503): keep it
    └── ServerError    the server answered another 5xx: it may be failing on one record
    Rejected           the server refused the batch (4xx): retrying it unchanged cannot help
    └── Unauthorized   401/403: the token is wrong or revoked; a valid one will pass

Both transports take plain JSON-ready record dicts (the API's ``PredictionIn`` shape), and
both read the service's schema (``monitor.sdk.schema``) to name positional values.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from monitor.extras import SERVER, install_command
from monitor.sdk.schema import Schema

if TYPE_CHECKING:
    import http.client

Json = dict[str, Any]


class Retryable(Exception):
    """Delivery failed in a way that may pass later."""


class ServerError(Retryable):
    """The server answered a 5xx (other than 503): a bug, possibly on one record of the batch."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Rejected(Exception):
    """The receiver refused the batch; ``status`` is the HTTP status (422 for validation)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Unauthorized(Rejected):
    """The receiver refused the token (401) or its role (403); the records are not at fault."""


class Transport(Protocol):
    """Delivers one batch of prediction records or raises Retryable / Rejected."""

    def send(self, records: Sequence[Json]) -> None: ...

    def close(self) -> None: ...

    def after_fork(self) -> None: ...


@runtime_checkable
class Authenticated(Protocol):
    """A transport whose token can be replaced while it runs."""

    def set_token(self, token: str | None) -> None: ...


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
        self._headers: dict[str, str] = {}
        self.set_token(token)
        self._conn: http.client.HTTPConnection | None = None

    def set_token(self, token: str | None) -> None:
        """Authenticate later requests with ``token`` (None: none); safe from any thread."""
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers  # one assignment: a request in flight keeps the dict it took

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


def normalized_url(url: str) -> str:
    """``url`` as one server is named however it is written: ``HTTP://Host:80/`` is ``http://host:80``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}{parts.path.rstrip('/')}"


def check_status(status: int, body: bytes) -> None:
    """Raise Retryable for 408/429/503, ServerError for other 5xx, Unauthorized for 401/403, else Rejected."""
    if status < 300:
        return
    if status in (408, 429, 503):  # busy or away on purpose (503 is the API's one deliberate 5xx)
        raise Retryable(f"HTTP {status}: {_message(body)}")
    if status >= 500:
        raise ServerError(status, _message(body))
    if status in (401, 403):
        raise Unauthorized(status, _message(body))
    raise Rejected(status, _message(body))


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace")
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return json.dumps(data)[:300]


class TokenClient:
    """An ``HttpClient`` whose token may come from a file (a mounted secret, say): read at
    start and again whenever the server refuses the token, so that a rotated token is picked
    up without a restart. The file's content wins over ``token``."""

    def __init__(
        self, url: str, token: str | None, *, timeout: float = 5.0, token_file: str | os.PathLike[str] | None = None
    ) -> None:
        self._token_file = Path(token_file) if token_file else None
        self._token = read_token(self._token_file) or token
        self.http = HttpClient(url, self._token, timeout)

    def post(self, path: str, payload: Json) -> None:
        """POST ``payload``; refused (401/403), once more if the token file holds a new token;
        then raise as ``check_status`` does for anything but a 2xx."""
        status, body = self.http.post(path, payload)
        if status in (401, 403) and self._reread_token():
            status, body = self.http.post(path, payload)
        check_status(status, body)

    def set_token(self, token: str | None) -> None:
        """Use ``token`` from the next request on."""
        self._token = token
        self.http.set_token(token)

    def _reread_token(self) -> bool:
        """True when the token file now holds another token (then in use)."""
        token = read_token(self._token_file)
        if not token or token == self._token:
            return False
        self.set_token(token)
        return True


class HttpTransport:
    """Sends batches to ``POST /v1/services/{service}/predictions``.

    With ``token_file`` (a mounted secret, say), the token is read from that file at start
    and again whenever the server refuses it, so a rotated token is picked up without a
    restart; the file's content wins over ``token``.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        service: str,
        *,
        timeout: float = 5.0,
        token_file: str | os.PathLike[str] | None = None,
    ) -> None:
        from urllib.parse import quote

        self._auth = TokenClient(url, token, timeout=timeout, token_file=token_file)
        self._client = self._auth.http
        self._path = f"/v1/services/{quote(service, safe='')}/predictions"
        self._schema_path = f"/v1/services/{quote(service, safe='')}/schema"
        self.target = normalized_url(url)

    def send(self, records: Sequence[Json]) -> None:
        """Deliver one batch."""
        self._auth.post(self._path, {"records": list(records)})

    def schema(self) -> Schema | None:
        """The service's features from ``GET /v1/services/{service}/schema``; None when it cannot be read now.

        An unknown service (404) has none; its batches will be refused and quarantined anyway.
        """
        try:
            status, body = self._client.request("GET", self._schema_path)
        except Retryable:
            return None
        if status == 404:
            return Schema()
        if status != 200:
            return None
        try:
            return Schema.of(json.loads(body))
        except ValueError:
            return None

    def set_token(self, token: str | None) -> None:
        """Use ``token`` from the next batch on."""
        self._auth.set_token(token)

    def close(self) -> None:
        """Release the connection."""
        self._client.close()

    def after_fork(self) -> None:
        """In a forked child: never share the parent's connection."""
        self._client.close()


class StoreTransport:
    """Writes batches straight into a store through ``monitor.ingest.Ingestor`` (no API server).

    The store and ingest modules (SQLAlchemy) are imported on first use, in the sender thread;
    where they are not installed (only the SDK is), building one raises ImportError naming
    the install command, so the tracker fails at once rather than its sender thread later.
    """

    def __init__(self, store_url: str, service: str) -> None:
        if importlib.util.find_spec("sqlalchemy") is None:
            raise ImportError(
                f"store_url= writes straight into a store, which needs mlwatch's server side: {install_command(SERVER)}"
            )
        self._url = store_url
        self.target = store_url
        self._service = service
        self._store: Any = None
        self._ingestor: Any = None

    def send(self, records: Sequence[Json]) -> None:
        """Validate and store one batch."""
        from sqlalchemy.exc import InterfaceError, OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        from monitor.errors import NotFound, Unavailable, ValidationFailed

        try:
            store, ingestor = self._open()
            ingestor.predictions(store.get_service(self._service), [_record(r) for r in records])
        except ValidationFailed as exc:
            raise Rejected(422, str(exc)) from exc
        except NotFound as exc:
            raise Rejected(404, str(exc)) from exc
        except (OperationalError, InterfaceError, PoolTimeout, Unavailable) as exc:  # down or locked: retry
            raise Retryable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # e.g. an integer too large for SQLite: maybe one record's fault
            raise ServerError(500, f"{type(exc).__name__}: {exc}") from exc

    def schema(self) -> Schema | None:
        """The service's features as the store holds them; None when the store cannot be read now."""
        from monitor.errors import NotFound

        try:
            service = self._open()[0].get_service(self._service)
        except NotFound:
            return Schema()
        except Exception:  # down or locked: read again on the next miss
            return None
        return Schema(tuple((f.name, f.type) for f in service.features), service.target)

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


def read_token(path: Path | None) -> str | None:
    """The token in the file at ``path`` (stripped), or None when there is no file or it is empty."""
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except OSError:
        return None  # not mounted yet: the token given, if any, is used meanwhile


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
