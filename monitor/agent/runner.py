"""The agent loop: every interval, collect from each collector and send the samples.

Samples that cannot be sent wait in a bounded buffer (oldest dropped past it, counted) and
go with the next tick: while the server is away, and while it refuses the token (401/403),
with one warning a minute at most, until a valid token comes (``SampleSender.set_token``,
or the token file, read again on every refusal). Samples the server refuses as invalid
(another 4xx) are dropped with a warning: sending them again cannot help.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from monitor.records import HostSample
from monitor.sdk.transport import Rejected, Retryable, TokenClient, Unauthorized

log = logging.getLogger("monitor.agent")
TOKEN_WARNING_INTERVAL = 60.0  # seconds: a refused token is worth one line a minute, not one a tick


class Collector(Protocol):
    """Anything with ``collect()`` returning frozen samples."""

    def collect(self) -> tuple[HostSample, ...]: ...


class Sender(Protocol):
    """Delivers a batch of samples or raises Retryable / Rejected."""

    def send(self, samples: Sequence[HostSample]) -> None: ...


class SampleSender:
    """Posts samples to ``POST /v1/hosts/{host}/samples``.

    ``token_file`` (default ``MLWATCH_TOKEN_FILE``) names a file holding the token, read at
    start and again whenever the server refuses the token; its content wins over ``token``.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        host: str,
        *,
        timeout: float = 5.0,
        token_file: str | os.PathLike[str] | None = None,
    ) -> None:
        found = token_file or os.environ.get("MLWATCH_TOKEN_FILE")
        self._client = TokenClient(url, token, timeout=timeout, token_file=found)
        self._path = f"/v1/hosts/{quote(host, safe='')}/samples"

    def send(self, samples: Sequence[HostSample]) -> None:
        """Deliver one batch; Unauthorized when the token is refused, even after reading the token file again."""
        self._client.post(self._path, {"samples": [_json(s) for s in samples]})

    def set_token(self, token: str | None) -> None:
        """Authenticate with ``token`` from the next batch on."""
        self._client.set_token(token)


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
        self._token_warned = -math.inf

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
            except Unauthorized as exc:
                self._refused_token(exc)
                return delivered
            except Retryable as exc:
                log.warning("mlwatch agent: cannot send samples (%s); %d wait", exc, len(self._buffer))
                return delivered
            except Rejected as exc:
                log.warning("mlwatch agent: the server refused %d sample(s): %s", len(batch), exc.message)
            for _ in batch:
                self._buffer.popleft()
            delivered += len(batch)
        return delivered

    def _refused_token(self, exc: Unauthorized) -> None:
        now = self._clock()
        if now - self._token_warned >= TOKEN_WARNING_INTERVAL:
            self._token_warned = now
            log.warning(
                "mlwatch agent: the server refused the token (%s); %d sample(s) wait (at most %d, the oldest "
                "dropped past it) until a valid token comes (MLWATCH_TOKEN_FILE is read again on every refusal)",
                exc,
                len(self._buffer),
                self._max_buffer,
            )

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
