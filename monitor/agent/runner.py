"""The agent loop: every interval, collect from each collector and send the samples.

Samples that cannot be sent wait in a bounded buffer (oldest dropped past it, counted) and
go with the next tick.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from monitor.records import HostSample
from monitor.sdk.transport import HttpClient, Rejected, Retryable, check_status

log = logging.getLogger("monitor.agent")


class Collector(Protocol):
    """Anything with ``collect()`` returning frozen samples."""

    def collect(self) -> tuple[HostSample, ...]: ...


class Sender(Protocol):
    """Delivers a batch of samples or raises Retryable / Rejected."""

    def send(self, samples: Sequence[HostSample]) -> None: ...


class SampleSender:
    """Posts samples to ``POST /v1/hosts/{host}/samples``."""

    def __init__(self, url: str, token: str | None, host: str, *, timeout: float = 5.0) -> None:
        self._client = HttpClient(url, token, timeout)
        self._path = f"/v1/hosts/{quote(host, safe='')}/samples"

    def send(self, samples: Sequence[HostSample]) -> None:
        """Deliver one batch."""
        body = {"samples": [_json(s) for s in samples]}
        check_status(*self._client.post(self._path, body))


def _json(sample: HostSample) -> dict[str, Any]:
    return {"timestamp": sample.ts, "kind": sample.kind, "name": sample.name, "metrics": sample.metrics}


class Agent:
    """Collects from every collector and sends; a failing collector or server never stops it."""

    def __init__(
        self,
        collectors: Iterable[Collector],
        sender: Sender,
        *,
        max_buffer: int = 100_000,
        batch_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.collectors = list(collectors)
        self.sender = sender
        self.batch_size = batch_size
        self.dropped = 0
        self._buffer: deque[HostSample] = deque()
        self._max_buffer = max_buffer
        self._clock, self._sleep = clock, sleep
        self._failed: set[int] = set()

    @property
    def pending(self) -> int:
        """Samples waiting for the server."""
        return len(self._buffer)

    def collect(self) -> list[HostSample]:
        """One round of samples from every collector."""
        samples: list[HostSample] = []
        for i, collector in enumerate(self.collectors):
            try:
                samples.extend(collector.collect())
            except Exception:
                if i not in self._failed:
                    self._failed.add(i)
                    log.exception("mlwatch agent: collector %s failed; the others go on", type(collector).__name__)
        return samples

    def tick(self) -> int:
        """Collect once and send everything waiting; returns how many samples were delivered."""
        self._buffer.extend(self.collect())
        while len(self._buffer) > self._max_buffer:
            self._buffer.popleft()
            self.dropped += 1
        return self._flush()

    def _flush(self) -> int:
        delivered = 0
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(self.batch_size, len(self._buffer)))]
            try:
                self.sender.send(batch)
            except Retryable as exc:
                log.warning("mlwatch agent: cannot send samples (%s); %d wait", exc, len(self._buffer))
                return delivered
            except Rejected as exc:
                log.warning("mlwatch agent: the server refused %d sample(s): %s", len(batch), exc.message)
            for _ in batch:
                self._buffer.popleft()
            delivered += len(batch)
        return delivered

    def run(self, interval: float, *, ticks: int | None = None) -> None:
        """Tick every ``interval`` seconds (forever, or ``ticks`` times)."""
        done = 0
        next_at = self._clock()
        while ticks is None or done < ticks:
            self.tick()
            done += 1
            next_at += interval
            self._sleep(max(0.0, next_at - self._clock()))


def default_collectors(
    *, pids: Iterable[int] = (), names: Iterable[str] = (), psutil: Any = None, nvml: Any = None
) -> list[Collector]:
    """The host, the chosen processes, and every GPU (their process memory included)."""
    from monitor.agent.gpu import GpuCollector
    from monitor.agent.host import HostCollector
    from monitor.agent.process import ProcessCollector

    processes = ProcessCollector(pids, names, psutil=psutil)
    return [HostCollector(psutil), processes, GpuCollector(nvml, pids=processes.watched_pids)]
