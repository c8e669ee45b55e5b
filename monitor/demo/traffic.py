"""Demo traffic: calls the served model like production would, then drifts; labels come late.

The timeline, in units of the service window (an hour of production, compressed):
``stable`` windows like the training data, then a ``ramp`` of gradual covariate shift and
concept change, then the drifted population. Ground truth for each request is posted
``label_delay`` seconds after the prediction, as a bank learns about defaults later.

A ``TrafficSource`` (``monitor.demo.data``) replaces the timeline where rows should follow
another story (the scenario suite's generators): it is asked for rows at ``t`` windows of
``window`` seconds since the start. ``on_batch`` sees every answered batch (its rows, what the
model predicted and which version did), for a caller that scores the served model itself.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pandas as pd

from monitor.demo.data import TARGET, CreditData, TrafficSource


@dataclass(frozen=True)
class Timeline:
    """How drift evolves over wall-clock seconds."""

    stable: float
    ramp: float

    def drift(self, elapsed: float) -> float:
        """Drift in [0, 1] at ``elapsed`` seconds since the traffic started."""
        if elapsed < self.stable:
            return 0.0
        return min(1.0, (elapsed - self.stable) / self.ramp) if self.ramp > 0 else 1.0


@dataclass(frozen=True)
class TimelineSource:
    """The demo's story as a ``TrafficSource``: ``data`` drifting along ``timeline`` (in seconds)."""

    timeline: Timeline
    data: CreditData
    window: float = 1.0

    def sample(self, n: int, t: float, *, seed: int) -> pd.DataFrame:
        """``n`` rows at the timeline's drift ``t`` windows in."""
        return self.data.sample(n, self.timeline.drift(t * self.window), seed=seed)


@dataclass(frozen=True)
class Batch:
    """One answered request: when (windows since the start), its rows with labels, the answer."""

    t: float
    frame: pd.DataFrame
    predictions: list[object]
    version: str


@dataclass
class TrafficStats:
    """What the replay did so far."""

    requests: int = 0
    rows: int = 0
    failures: int = 0
    labels: int = 0
    versions: dict[str, int] = field(default_factory=dict)


class Traffic:
    """Sends batches of applicants to the model server and their labels to the mlwatch API."""

    def __init__(
        self,
        model_url: str,
        api_url: str,
        token: str,
        timeline: Timeline,
        *,
        rows_per_second: float = 40.0,
        batch: int = 10,
        label_delay: float = 5.0,
        data: CreditData | None = None,
        clock: Callable[[], float] = time.monotonic,
        source: TrafficSource | None = None,
        window: float = 1.0,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        self.model_url = model_url
        self.api = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.model = httpx.Client(timeout=10)
        self.timeline = timeline
        self.interval = batch / rows_per_second
        self.batch = batch
        self.label_delay = label_delay
        self.window = window
        self.source = source or TimelineSource(timeline, data or CreditData(seed=7), window)
        self.on_batch = on_batch
        self.clock = clock
        self.started_at: float | None = None  # wall-clock time of the first request
        self.stats = TrafficStats()
        self.stop = threading.Event()
        self._pending: deque[tuple[float, list[dict[str, object]]]] = deque()
        self._seeds = itertools.count(1000)

    def run(self) -> None:
        """Send until ``stop`` is set."""
        started = self.clock()
        self.started_at = time.time()
        while not self.stop.is_set():
            tick = self.clock()
            self._send((tick - started) / self.window)
            self._deliver_labels(tick)
            self.stop.wait(max(0.0, self.interval - (self.clock() - tick)))
        self.api.close()
        self.model.close()

    def _send(self, t: float) -> None:
        frame = self.source.sample(self.batch, t, seed=next(self._seeds))
        request_id = uuid.uuid4().hex[:16]
        features = frame.drop(columns=[TARGET]).to_dict(orient="records")
        try:
            answer = self.model.post(
                f"{self.model_url}/invocations",
                json={"dataframe_records": features},
                headers={"X-Request-ID": request_id},
            )
            answer.raise_for_status()
        except httpx.HTTPError:
            self.stats.failures += 1
            return
        version = answer.headers.get("x-model-version", "?")
        self.stats.requests += 1
        self.stats.rows += len(features)
        self.stats.versions[version] = self.stats.versions.get(version, 0) + len(features)
        if self.on_batch is not None:
            self.on_batch(Batch(t, frame, list(answer.json().get("predictions", [])), version))
        labels = [{"request_id": f"{request_id}-{i}", "label": int(y)} for i, y in enumerate(frame[TARGET])]
        self._pending.append((self.clock() + self.label_delay, labels))

    def _deliver_labels(self, now: float) -> None:
        due: list[dict[str, object]] = []
        while self._pending and self._pending[0][0] <= now:
            due.extend(self._pending.popleft()[1])
        if not due:
            return
        try:
            self.api.post("/v1/services/credit/labels", json={"labels": due}).raise_for_status()
            self.stats.labels += len(due)
        except httpx.HTTPError:
            self._pending.appendleft((now + 1.0, due))  # try again shortly: labels are never dropped
