"""The shadow's scorer: a challenger scored on the requests the champion answered, its answers
kept and never returned. It runs in the shadow process beside ``mlwatch serve``
(``retrain.shadow_process``), which hands it each answered request with ``put``.

One thread scores the queue with the shadow model, many requests in one call of the model,
inside ``RequestGate.background()``, and writes the pairs to ``shadow_predictions`` in
batches. When the shadow falls behind, requests past ``max_queued`` are not scored
(counted in ``dropped``), never waited for.

Which version is in shadow is the service's active stage in the store (``retrain.stages``),
read every ``interval`` seconds. A shadow that raises, or cannot be loaded, never touches a
reply: the error is logged, counted on the stage, and ends it as ``crashed`` with the error
as the reason.

    >>> scorer = ShadowScorer(store, settings, service, loader, RequestGate())
    >>> scorer.start()
    >>> scorer.put(Offered(frame, "req-1", time.time(), "3", predictions, probabilities))
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import Settings
from monitor.records import Service, ShadowRow, StageRecord
from monitor.store import Store

if TYPE_CHECKING:
    import pandas as pd

    from retrain.serving import ChampionLoader, LoadedModel, RequestGate

log = logging.getLogger("mlwatch.serve")
MAX_QUEUED = 1024
"""Requests waiting for the shadow at most; past it a request is not shadowed (counted)."""
BATCH_ROWS = 500
"""Rows written to the store at once (or fewer, after ``FLUSH_SECONDS``)."""
FLUSH_SECONDS = 1.0
BATCH_REQUESTS = 128
"""Queued requests the shadow scores in one call of its model."""
GATHER_SECONDS = 0.25
"""How long the shadow lets requests queue before it scores them: scoring each 20-row request
alone added 19-26% to the champion's median latency on two busy cores, mostly the fixed cost
of a pipeline call (``benchmarks/bench_shadow.py``)."""


@dataclass(frozen=True, slots=True)
class Offered:
    """One answered request, waiting for the shadow."""

    frame: pd.DataFrame
    base: str
    ts: float
    champion: str
    predictions: list[Any]
    probabilities: Sequence[dict[str, float] | None] | None


@dataclass(frozen=True, slots=True)
class ShadowStatus:
    """What the shadow is and has done since this process started."""

    stage_id: int | None
    version: str | None
    scored: int
    dropped: int
    crashes: int
    write_errors: int
    busy_since: float = 0.0
    """When the model call now running began (epoch seconds); 0 between calls. The server stops
    a shadow whose call has run too long (``retrain.shadow_process``)."""


class ShadowScorer:
    """Scores offered requests with the version in shadow and keeps what it says."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        service: Service,
        loader: ChampionLoader,
        gate: RequestGate,
        *,
        interval: float = 5.0,
        max_queued: int = MAX_QUEUED,
        clock: Callable[[], float] = time.time,
        publish: Callable[[ShadowStatus], None] | None = None,
    ) -> None:
        self.store = store
        self.publish = publish
        self.settings = settings
        self.service = service
        self.loader = loader
        self.gate = gate
        self.interval = interval
        self.max_queued = max_queued
        self.clock = clock
        self.stage: StageRecord | None = None
        self.model: LoadedModel | None = None
        self._queue: deque[Offered] = deque()
        self._rows: list[ShadowRow] = []
        self._flushed_at = 0.0
        self._counts = {"scored": 0, "dropped": 0, "crashes": 0, "write_errors": 0}
        self._busy_since = 0.0
        self._wake = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="mlwatch-shadow", daemon=True)

    @property
    def active(self) -> bool:
        """True while a shadow model is loaded and scoring."""
        return self.model is not None

    def start(self) -> None:
        """Start the scoring thread (it reads the stage at once, then every ``interval`` seconds)."""
        self.thread.start()

    def close(self) -> None:
        """Stop scoring and write what was scored."""
        self.stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self._flush(force=True)

    def put(self, offered: Offered) -> None:
        """Queue an answered request for the shadow; never blocks (past ``max_queued``: counted, dropped)."""
        if self.model is None:
            return
        if len(self._queue) >= self.max_queued:
            self._counts["dropped"] += 1
            return
        self._queue.append(offered)
        self._wake.set()

    def status(self) -> ShadowStatus:
        """The stage, version and counters of this process's shadow."""
        stage, model = self.stage, self.model
        version = model.version if model else None
        return ShadowStatus(stage.id if stage and model else None, version, **self._counts, busy_since=self._busy_since)

    # -- the scoring thread -------------------------------------------------------------

    def _loop(self) -> None:
        refreshed = 0.0
        while not self.stop.is_set():
            if time.monotonic() - refreshed >= self.interval:
                refreshed = time.monotonic()
                self._guarded(self.refresh)
            if self._wake.wait(min(self.interval, FLUSH_SECONDS)):
                self.stop.wait(GATHER_SECONDS)  # let requests gather: one model call scores them all
            self._wake.clear()
            while self._queue and not self.stop.is_set():
                self._guarded(self._score_queued)
            self._guarded(self._flush)
            if self.publish is not None:
                self.publish(self.status())

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            with self.gate.background():
                step()
        except Exception:  # the shadow thread keeps going; the champion never sees this
            log.exception("shadow step %s failed", getattr(step, "__name__", step))

    def refresh(self) -> None:
        """Follow the service's active stage: load a new shadow version, drop an ended one."""
        stage = self.store.active_stage(self.service)
        if stage is None or stage.stage != "shadow":
            self._flush(force=True)
            self._set(None, None)
            return
        if self.model is not None and self.stage is not None and self.stage.id == stage.id:
            return
        self._flush(force=True)
        try:
            model = self.loader.load(stage.version)
        except Exception as exc:
            self._crashed(stage, f"could not load it: {type(exc).__name__}: {exc}")
            return
        self._set(stage, model)
        log.warning("scoring version %s in shadow (stage %s)", stage.version, stage.id)

    def _set(self, stage: StageRecord | None, model: LoadedModel | None) -> None:
        self.model = None  # offer() stops queuing before the stage changes under it
        self._queue.clear()
        self.stage = stage
        self.model = model
        if self.publish is not None:
            self.publish(self.status())

    def _score_queued(self) -> None:
        """Score what is queued (up to ``BATCH_REQUESTS`` requests) in one call of the model: a
        pipeline's fixed cost per call was most of the shadow's work on small requests."""
        import pandas as pd

        model, stage = self.model, self.stage
        taken = [self._queue.popleft() for _ in range(min(BATCH_REQUESTS, len(self._queue)))]
        if model is None or stage is None or not taken:
            return
        frame = pd.concat([o.frame for o in taken], ignore_index=True) if len(taken) > 1 else taken[0].frame
        start = time.perf_counter()
        self._busy(self.clock())
        try:
            said = _listed(model.predict(frame))
            proba = model.predict_proba(frame) if model.predict_proba is not None else None
        except Exception as exc:
            self._crashed(stage, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._busy(0.0)
        latency = (time.perf_counter() - start) * 1000.0 / max(1, len(frame))
        first = 0
        for offered in taken:
            rows = len(offered.frame)
            part = proba[first : first + rows] if proba is not None else None
            self._rows.extend(_rows(offered, model.version, said[first : first + rows], part, latency))
            first += rows
        self._counts["scored"] += len(taken)

    def _busy(self, since: float) -> None:
        """Say at once that a model call began (``since``) or ended (0): a call that never
        returns publishes nothing after it."""
        self._busy_since = since
        if self.publish is not None:
            self.publish(self.status())

    def _crashed(self, stage: StageRecord, error: str) -> None:
        """Count the crash and end the stage; the shadow stops here."""
        from retrain.stages import record_crash

        log.error("the shadow version %s crashed; ending its stage %s: %s", stage.version, stage.id, error)
        self._counts["crashes"] += 1
        self._flush(force=True)
        self._set(None, None)
        record_crash(self.store, self.settings, self.service, stage, error)

    def _flush(self, force: bool = False) -> None:
        """Write the scored rows: a full batch, or whatever is there after ``FLUSH_SECONDS`` (or now)."""
        due = force or len(self._rows) >= BATCH_ROWS or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        if not self._rows or not due or self.stage is None:
            return
        rows, self._rows = self._rows, []
        self._flushed_at = time.monotonic()
        try:
            self.store.add_shadow_rows(self.service, self.stage.id, rows)
        except Exception:  # the store is away: these rows are lost, and counted
            self._counts["write_errors"] += 1
            log.exception("could not keep %s shadow rows", len(rows))


def _rows(
    offered: Offered,
    version: str,
    said: list[Any],
    proba: Sequence[dict[str, float]] | None,
    latency: float,
) -> list[ShadowRow]:
    champion_proba = offered.probabilities or [None] * len(said)
    shadow_proba: Sequence[dict[str, float] | None] = proba or [None] * len(said)
    return [
        ShadowRow(
            request_id=f"{offered.base}-{i}",
            ts=offered.ts,
            version=version,
            prediction=prediction,
            probabilities=shadow_proba[i],
            latency_ms=latency,
            champion_version=offered.champion,
            champion_prediction=champion,
            champion_probabilities=champion_proba[i],
        )
        for i, (prediction, champion) in enumerate(zip(said, offered.predictions, strict=False))
    ]


def _listed(predictions: Any) -> list[Any]:
    from retrain.serving import listed

    return listed(predictions)
