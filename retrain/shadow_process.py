"""The shadow in a process of its own, beside ``mlwatch serve``: no GIL shared with requests,
a lower CPU priority, and a crash of any kind (a segfault too) kept away from the champion.

Scoring the shadow in a thread of the server added 19-26% to the champion's median latency
on two busy cores even when it only ran between requests: the GIL changed hands around
every reply. Now a request hands the raw body it was sent, the champion's answers and its
request id to ``ShadowProcess.offer`` (a check of a shared flag, an orjson encoding and a
``deque.append``); a feeder thread writes them to a pipe; the child parses them as the server
did and runs ``retrain.shadow.ShadowScorer`` on them, at ``NICENESS`` lower priority.

The child publishes its stage, version and counters in shared memory (``/version`` shows
them), and when its model call now running began. A child that dies ends the active stage as
``crashed`` with its exit code, and a new child is started for the next stage. A child whose
model call has run for more than ``timeout`` seconds (a shadow that hangs) is killed, and its
stage ends as ``crashed`` saying so: a hung shadow would otherwise hold its stage until
``shadow.max_duration``, scoring nothing.

    >>> shadow = ShadowProcess(store, settings, service, interval=5, timeout=60)
    >>> shadow.start()
    >>> shadow.offer(body, "req-1", "3", predictions, probabilities)
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from monitor.config import Settings
from monitor.records import Service
from monitor.store import Store
from retrain.shadow import MAX_QUEUED, Offered, ShadowScorer, ShadowStatus

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.sharedctypes import SynchronizedArray

log = logging.getLogger("mlwatch.serve")
NICENESS = 10
"""How much lower the child's CPU priority is than the server's: on a busy machine the
shadow's work waits for the cores before requests do."""
FEED_SECONDS = 0.05
"""How often the feeder writes the queued requests to the child."""
FIELDS = ("stage_id", "version", "scored", "dropped", "crashes", "write_errors", "busy_since_ms")
"""The shared counters, in order (0: no stage, no version, no model call running)."""
TIMEOUT = 60.0
"""Seconds one model call of the shadow may take before the shadow is taken for hung."""


class ShadowProcess:
    """The server's side of the shadow: offers requests to the child and reads its status."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        service: Service,
        *,
        interval: float = 5.0,
        timeout: float | None = TIMEOUT,
    ) -> None:
        self.store = store
        self.settings = settings
        self.service = service
        self.interval = interval
        self.timeout = timeout
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._shared: SynchronizedArray[int] = self._context.Array("q", len(FIELDS), lock=False)
        self._queue: deque[bytes] = deque()
        self._wake = threading.Event()
        self._dropped = 0
        self._deaths = 0
        self.stop = threading.Event()
        self._process: Any = None
        self._conn: Connection | None = None
        self.thread = threading.Thread(target=self._feed, name="mlwatch-shadow-feeder", daemon=True)

    @property
    def active(self) -> bool:
        """True while the child has a shadow loaded."""
        return self._shared[1] != 0

    def start(self) -> None:
        """Start the child and the feeder thread."""
        self._spawn()
        self.thread.start()

    def close(self) -> None:
        """Stop the feeder and the child (which writes what it scored)."""
        self.stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        if self._conn is not None:
            self._conn.close()  # the child's reader sees the end and stops
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()

    def offer(
        self,
        body: bytes,
        base: str,
        champion: str,
        predictions: list[Any],
        probabilities: Sequence[dict[str, float] | None] | None = None,
    ) -> None:
        """Queue an answered request for the shadow; never blocks, never raises."""
        try:
            if not self.active:
                return
            if len(self._queue) >= MAX_QUEUED:
                self._dropped += 1
                return
            message = {"b": body.decode(), "i": base, "t": time.time(), "c": champion, "p": predictions}
            if probabilities is not None and any(probabilities):
                message["q"] = probabilities
            self._queue.append(orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY))
        except Exception:  # a reply is never refused for its shadow
            self._dropped += 1

    def status(self) -> ShadowStatus:
        """The stage, version and counters of the shadow since the server started."""
        values = dict(zip(FIELDS, self._shared[:], strict=True))
        return ShadowStatus(
            stage_id=values["stage_id"] or None,
            version=str(values["version"]) if values["version"] else None,
            scored=values["scored"],
            dropped=values["dropped"] + self._dropped,
            crashes=values["crashes"] + self._deaths,
            write_errors=values["write_errors"],
            busy_since=values["busy_since_ms"] / 1000.0,
        )

    # -- the feeder thread ----------------------------------------------------------------

    def _spawn(self) -> None:
        ours, theirs = self._context.Pipe(duplex=False)
        args = (self.settings.model_dump_json(by_alias=True), self.service.name, self.interval, ours, self._shared)
        self._process = self._context.Process(target=child, args=args, name="mlwatch-shadow", daemon=True)
        self._process.start()
        ours.close()
        self._conn = theirs

    def _feed(self) -> None:
        while not self.stop.is_set():
            # On a timer, not woken per request: a thread woken as each reply went out took the
            # GIL from the event loop just when it was sending.
            self._wake.wait(FEED_SECONDS)
            try:
                while self._queue and self._conn is not None:
                    self._conn.send_bytes(self._queue.popleft())
            except (OSError, ValueError):  # the child is gone: see below
                self._queue.clear()
            if self.stop.is_set():
                continue
            if not self._process.is_alive():
                self._restart(f"the shadow process died with exit code {self._process.exitcode}")
            elif self._hung():
                self._process.kill()
                self._process.join(timeout=10)
                self._restart(f"the shadow's model call ran for more than {self.timeout:g} s (hung); it was stopped")

    def _hung(self) -> bool:
        """True when the child's model call now running began more than ``timeout`` seconds ago."""
        since = self._shared[FIELDS.index("busy_since_ms")] / 1000.0
        return self.timeout is not None and since > 0 and time.time() - since > self.timeout

    def _restart(self, reason: str) -> None:
        """End the stage of a child that died or hung, then start another child."""
        from retrain.stages import record_crash

        stage_id = self._shared[0]
        self._deaths += 1
        for name in ("stage_id", "version", "busy_since_ms"):
            self._shared[FIELDS.index(name)] = 0
        log.error("%s; starting another", reason)
        active = self.store.active_stage(self.service)
        if active is not None and active.id == stage_id:
            record_crash(self.store, self.settings, self.service, active, reason)
        if self._conn is not None:
            self._conn.close()
        self._spawn()


class _Writer:
    """Publishes the child's status in the shared array."""

    def __init__(self, shared: SynchronizedArray[int]) -> None:
        self.shared = shared

    def __call__(self, status: ShadowStatus) -> None:
        values = (status.stage_id or 0, int(status.version or 0), status.scored, status.dropped)
        busy = round(status.busy_since * 1000)
        for i, value in enumerate((*values, status.crashes, status.write_errors, busy)):
            self.shared[i] = value


def child(settings_json: str, service_name: str, interval: float, conn: Connection, shared: Any) -> None:
    """The shadow process: read offered requests from ``conn`` and score them until it closes."""
    from retrain.registry import make_client, model_name
    from retrain.serving import ChampionLoader, RequestGate

    os.nice(NICENESS)
    settings = Settings.model_validate_json(settings_json)
    store = Store.open(settings.store_url, migrate=False)
    service = store.get_service(service_name)
    client = make_client(settings.mlflow_tracking_uri, store)
    loader = ChampionLoader(client, model_name(service), settings.mlflow_tracking_uri)
    scorer = ShadowScorer(store, settings, service, loader, RequestGate(), interval=interval, publish=_Writer(shared))
    scorer.start()
    try:
        _read(conn, scorer)
    finally:
        scorer.close()
        store.close()


def _read(conn: Connection, scorer: ShadowScorer) -> None:
    """Turn each message into the frame the server scored and queue it; return when the pipe closes."""
    from retrain.serving import parse_payload

    while True:
        try:
            message = orjson.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            frame = parse_payload(message["b"].encode())
        except ValueError:  # the server parsed it: it cannot happen, and costs nothing if it does
            continue
        offered = Offered(frame, message["i"], message["t"], message["c"], message["p"], message.get("q"))
        scorer.put(offered)
