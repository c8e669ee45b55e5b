"""The tracker: record predictions from a serving thread without slowing it.

    >>> from monitor.sdk import Tracker
    >>> tracker = Tracker("credit", model_version="3")        # MLWATCH_URL, MLWATCH_TOKEN
    >>> @tracker.track
    ... def predict(features: dict) -> int: ...
    >>> with tracker.call(features) as call:                  # or a context manager
    ...     call.prediction = model.predict(row)
    >>> tracker.log(features, prediction=1, latency_ms=3.2)    # or one explicit call

Records go to a bounded in-memory queue; a background thread sends them in batches to the
ingest API (or, with ``store_url``, straight into a store; with ``sink=`` or
``MLWATCH_SINK``, to a NATS JetStream or MQTT broker: ``monitor.sdk.sink``), retrying with backoff and
spooling to disk while the server is away. ``flush()`` and process exit deliver what waits.

A record the server refuses (4xx), or keeps failing on (5xx) while it takes the others, is
moved to ``<spool_dir>/quarantine/`` so that later records flow; a refused token (401/403)
keeps everything in the spool until ``set_token`` or the token file brings a valid one.
``monitor.sdk.delivery`` tells the whole story; ``stats()`` counts each outcome.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from monitor.sdk.calls import Encoder, FeatureFilter, RawCall
from monitor.sdk.delivery import Delivery, DeliveryOptions, DeliveryStats
from monitor.sdk.quarantine import Quarantine
from monitor.sdk.schema import Names, SchemaSource
from monitor.sdk.sink import sink_transport
from monitor.sdk.spool import DEFAULT_MAX_AGE, Spool, default_directory
from monitor.sdk.transport import Authenticated, StoreTransport, Transport

log = logging.getLogger("monitor.sdk")
F = TypeVar("F", bound=Callable[..., Any])
FeaturesOf = Callable[[tuple[Any, ...], dict[str, Any]], Any]
DEFAULT_URL = "http://127.0.0.1:8000"


class Tracker:
    """Records the predictions of one service and delivers them in the background.

    ``token`` defaults to ``MLWATCH_TOKEN``; ``token_file`` (default ``MLWATCH_TOKEN_FILE``)
    names a file holding the token, read at start and again whenever the server refuses
    the token, so that a rotated secret is picked up without a restart. ``clock`` stamps
    the records; ``timer`` paces retries and warnings (tests pass fakes of both).

    ``spool_dir`` defaults to a directory of this service *and* this server (the API URL,
    or ``store_url``), ``~/.cache/mlwatch/spool/<service>/<key>/``: a restart drains what its
    predecessor spooled, and what was spooled for one server never goes to another
    (``monitor.sdk.spool.default_directory``); ``spool_base`` puts that directory under another
    root than the cache (``<spool_base>/mlwatch/spool/...``). The spool holds ``spool_max_bytes`` and
    records up to ``spool_max_age`` seconds old (7 days; None: any age): past either bound
    the oldest are dropped and counted in ``stats()``. Records keep the time ``clock`` gave
    them when logged, however late they are sent.

    ``sink`` names where batches go by URL (``nats://``, ``mqtt://``, ``http://``; see
    ``monitor.sdk.sink``); the first given of ``store_url``, ``sink``, ``url``,
    ``MLWATCH_SINK``, ``MLWATCH_URL`` wins, else the local API.

    ``write_ahead=True`` writes each call to the spool before ``log`` returns, for a process
    that may be frozen or stopped right after (a serverless handler, ``monitor.sdk.serverless``).
    """

    def __init__(
        self,
        service: str,
        *,
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        store_url: str | None = None,
        sink: str | None = None,
        model_version: str | None = None,
        sample_rate: float = 1.0,
        allow_features: Collection[str] | None = None,
        deny_features: Collection[str] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_base: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 64 * 1024 * 1024,
        spool_max_age: float | None = DEFAULT_MAX_AGE,
        quarantine_max_bytes: int = 16 * 1024 * 1024,
        options: DeliveryOptions | None = None,
        transport: Transport | None = None,
        max_body_bytes: int = 1024 * 1024,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        flush_at_exit: bool = True,
        write_ahead: bool = False,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate!r}")
        self.service = service
        self.model_version = model_version
        self.sample_rate = sample_rate
        self._clock = clock
        self._ids = itertools.count()
        self._prefix = os.urandom(8).hex() + "-"
        self._random = random.random
        transport = transport or _transport(service, url, token, token_file, store_url, sink)
        names = Names(transport if isinstance(transport, SchemaSource) else None, clock=timer)
        encoder = Encoder(FeatureFilter.of(allow_features, deny_features), model_version, max_body_bytes, names)
        base = Path(spool_base) if spool_base else None
        directory = Path(spool_dir) if spool_dir else default_directory(service, _target(transport), base)
        spool = Spool(directory, spool_max_bytes, max_age=spool_max_age, clock=clock)
        quarantine = Quarantine(spool.directory / "quarantine", quarantine_max_bytes)
        self._delivery = Delivery(
            transport,
            encoder,
            spool,
            quarantine,
            options or DeliveryOptions(),
            clock=timer,
        )
        self.write_ahead = write_ahead
        self.spool_dir = spool.directory
        """Where this tracker's spool (and its ``quarantine/``) is."""
        self._offer = self._delivery.persist if write_ahead else self._delivery.offer
        self._closed = False
        if flush_at_exit:
            atexit.register(self.close)

    def new_request_id(self) -> str:
        """A request id unique to this process (cheaper than a uuid on the serving thread)."""
        return f"{self._prefix}{next(self._ids)}"

    def log(
        self,
        features: Mapping[str, Any] | Sequence[Any] | None,
        prediction: Any = None,
        *,
        probabilities: Any = None,
        latency_ms: float | None = None,
        model_version: str | None = None,
        request_id: str | None = None,
        status: str = "ok",
        timestamp: float | None = None,
    ) -> str | None:
        """Record one prediction; returns its request id (None when sampled out). Never raises.

        ``features`` is a mapping of name to value, or a sequence (a list, a numpy row) whose
        values are named after the service's registered features, in order (else ``f0``,
        ``f1``, ...; see ``monitor.sdk.schema``).
        """
        try:
            if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                return None
            rid = request_id or f"{self._prefix}{next(self._ids)}"
            ts = self._clock() if timestamp is None else timestamp
            row = dict(features) if type(features) is dict else features  # a copy: callers may reuse their dict
            self._offer((rid, ts, row, prediction, probabilities, latency_ms, model_version, status))
            return rid
        except Exception:
            return None

    def log_exchange(
        self, request_body: bytes, response_body: bytes, status_code: int, latency_ms: float, **extra: Any
    ) -> None:
        """Record an HTTP exchange whose bodies are parsed later, in the sender thread. Never raises.

        ``request_id=`` is the id the request came with (``X-Request-ID``), if any; a V2
        request's own ``id`` wins over it (``monitor.sdk.payloads``).
        """
        try:
            if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                return
            given = extra.pop("request_id", None)
            rid = given or f"{self._prefix}{next(self._ids)}"
            ts = extra.pop("timestamp", None) or self._clock()
            self._offer(
                RawCall(rid, ts, latency_ms, status_code, request_body, response_body, id_given=bool(given), **extra)
            )
        except Exception:
            log.debug("mlwatch: could not queue an exchange", exc_info=True)

    def track(
        self, fn: F | None = None, *, features: FeaturesOf | None = None, model_version: str | None = None
    ) -> Any:
        """Decorator: time each call and record its features (first argument, or ``features(args, kwargs)``).

        Works on plain and ``async`` functions; an exception is recorded as an error and re-raised.
        """

        def wrap(func: F) -> F:
            import inspect

            extract = features or _first_argument
            if inspect.iscoroutinefunction(func):
                return self._wrap_async(func, extract, model_version)  # type: ignore[return-value]
            return self._wrap_sync(func, extract, model_version)  # type: ignore[return-value]

        return wrap(fn) if fn is not None else wrap

    def _wrap_sync(self, func: Callable[..., Any], extract: FeaturesOf, version: str | None) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except Exception:
                self._record(extract, args, kwargs, None, start, version, "error")
                raise
            self._record(extract, args, kwargs, result, start, version, "ok")
            return result

        return wrapper

    def _wrap_async(self, func: Callable[..., Any], extract: FeaturesOf, version: str | None) -> Callable[..., Any]:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = await func(*args, **kwargs)
            except Exception:
                self._record(extract, args, kwargs, None, start, version, "error")
                raise
            self._record(extract, args, kwargs, result, start, version, "ok")
            return result

        return wrapper

    def _record(
        self,
        extract: FeaturesOf,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        start: float,
        version: str | None,
        status: str,
    ) -> None:
        latency = (time.perf_counter() - start) * 1000.0
        try:
            found = extract(args, kwargs)
        except Exception:
            found = None
        self.log(found, result, latency_ms=latency, model_version=version, status=status)

    def call(self, features: Mapping[str, Any] | None, *, model_version: str | None = None) -> TrackedCall:
        """Context manager that times its block; set ``.prediction`` (and ``.probabilities``) inside."""
        return TrackedCall(self, features, model_version)

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued and spooled; True when nothing is left waiting."""
        return self._delivery.flush(timeout)

    def stats(self) -> DeliveryStats:
        """Delivery counters: sent, rejected, quarantined, dropped (queue, spool, quarantine full), bytes waiting."""
        return self._delivery.stats()

    def metrics_text(self) -> str:
        """``stats()`` as Prometheus text (``mlwatch_sdk_*`` series), to append to a service's ``/metrics``."""
        from monitor.sdk.metrics import prometheus_text

        return prometheus_text(self.service, self.stats())

    def learn_schema(self) -> None:
        """Read the service's registered features now, in the background, to name positional values.

        Otherwise they are read when the first positional row is sent, and again (at most
        every 30 s) when a row's positional values match none held (``monitor.sdk.schema``).
        """
        self._delivery.learn_schema()

    def set_token(self, token: str) -> None:
        """Authenticate with ``token`` from now on; what waited on a refused token is sent at once.

        >>> tracker.set_token(os.environ["MLWATCH_TOKEN"])   # after rotating it, say
        """
        transport = self._delivery.transport
        if not isinstance(transport, Authenticated):
            raise ValueError(
                f"this tracker's transport ({type(transport).__name__}) takes no token; "
                "pass token= when it is built, or use the HTTP transport (url=)"
            )
        transport.set_token(token)
        self._delivery.retry_now()

    def close(self, timeout: float = 5.0) -> None:
        """Flush and stop the sender; anything undelivered stays in the spool for next time."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._delivery.close(timeout)
        stats = self.stats()
        lost = stats.dropped_queue_full + stats.dropped_spool_full + stats.dropped_spool_expired + stats.quarantined
        if lost:
            log.warning("mlwatch: %d record(s) of %r were never delivered: %s", lost, self.service, stats)


class TrackedCall:
    """The block of ``Tracker.call``: timed, recorded on exit (as an error if it raised)."""

    __slots__ = ("_start", "_tracker", "_version", "features", "prediction", "probabilities", "request_id")

    def __init__(self, tracker: Tracker, features: Mapping[str, Any] | None, version: str | None) -> None:
        self._tracker = tracker
        self._version = version
        self._start = 0.0
        self.features = features
        self.prediction: Any = None
        self.probabilities: Any = None
        self.request_id: str | None = None

    def __enter__(self) -> TrackedCall:
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        latency = (time.perf_counter() - self._start) * 1000.0
        self.request_id = self._tracker.log(
            self.features,
            self.prediction,
            probabilities=self.probabilities,
            latency_ms=latency,
            model_version=self._version,
            status="ok" if kind is None else "error",
        )


def _first_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args and isinstance(args[0], Mapping):
        return args[0]
    if len(args) > 1 and isinstance(args[1], Mapping):  # a method: skip self
        return args[1]
    return kwargs


def _transport(
    service: str,
    url: str | None,
    token: str | None,
    token_file: str | os.PathLike[str] | None,
    store_url: str | None,
    sink: str | None,
) -> Transport:
    """What the arguments name, else the environment: ``store_url``, ``sink``, ``url``, then
    ``MLWATCH_SINK``, ``MLWATCH_URL``, the local API."""
    if store_url:
        return StoreTransport(store_url, service)
    target = sink or url or os.environ.get("MLWATCH_SINK") or os.environ.get("MLWATCH_URL") or DEFAULT_URL
    return sink_transport(
        target,
        service,
        token=token or os.environ.get("MLWATCH_TOKEN"),
        token_file=token_file or os.environ.get("MLWATCH_TOKEN_FILE"),
    )


def _target(transport: Transport) -> str:
    """Where ``transport`` delivers, which keys its default spool (a class of one's own: its name)."""
    target = getattr(transport, "target", None)
    return str(target) if target else f"{type(transport).__module__}.{type(transport).__qualname__}"
