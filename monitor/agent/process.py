"""The process collector: CPU, resident memory and threads of chosen processes (by PID or name)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from monitor.records import HostSample

log = logging.getLogger("monitor.agent")


RECHECK_SHARE = 20
"""Each rescan also reads again the names of 1/20 of the processes already seen, in turn."""


class ProcessCollector:
    """Samples the processes given by PID, and those whose name matches, found again every ``rescan`` s.

    Reading a process's name costs about 50 µs, listing PIDs 0.1 ms in all; so only the
    first scan reads every name. A rescan reads those of processes that appeared since the
    last one, and, in turn, those of a twentieth of the others, which catches a PID reused
    between two scans within ``RECHECK_SHARE`` rescans without a costly sample now and then.
    """

    def __init__(
        self,
        pids: Iterable[int] = (),
        names: Iterable[str] = (),
        *,
        psutil: Any = None,
        clock: Callable[[], float] = time.time,
        rescan: float = 30.0,
    ) -> None:
        if psutil is None:
            import psutil as psutil_module

            psutil = psutil_module
        self._ps = psutil
        self._clock = clock
        self._names = frozenset(names)
        self._rescan = rescan
        self._scanned_at = float("-inf")
        self._examined: set[int] = set()
        self._recheck_from = 0
        self._watched: dict[int, tuple[str, Any]] = {}
        self._missing_said: set[int] = set()
        for pid in pids:
            self._watch_pid(pid)

    def watched_pids(self) -> tuple[int, ...]:
        """The PIDs sampled now (the GPU collector reports their GPU memory)."""
        return tuple(self._watched)

    def collect(self) -> tuple[HostSample, ...]:
        """One sample per watched process that still runs."""
        now = self._clock()
        if self._names and now - self._scanned_at >= self._rescan:
            self._scan(now)
        samples = []
        for pid, (name, process) in list(self._watched.items()):
            metrics = self._read(pid, process)
            if metrics is not None:
                samples.append(HostSample(now, "process", f"{pid}/{name}", metrics))
        return tuple(samples)

    def _read(self, pid: int, process: Any) -> dict[str, float] | None:
        try:
            with process.oneshot():
                return {
                    "pid": float(pid),
                    "cpu_percent": float(process.cpu_percent(None)),
                    "rss_bytes": float(process.memory_info().rss),
                    "threads": float(process.num_threads()),
                }
        except (self._ps.NoSuchProcess, self._ps.AccessDenied) as exc:
            log.warning("mlwatch agent: stopped watching process %d: %s", pid, type(exc).__name__)
            del self._watched[pid]
            return None

    def _watch_pid(self, pid: int) -> None:
        try:
            process = self._ps.Process(pid)
            name = process.name()
            process.cpu_percent(None)  # primes the CPU counter
        except (self._ps.NoSuchProcess, self._ps.AccessDenied) as exc:
            if pid not in self._missing_said:
                self._missing_said.add(pid)
                log.warning("mlwatch agent: cannot watch process %d: %s", pid, type(exc).__name__)
            return
        self._watched[pid] = (name, process)

    def _scan(self, now: float) -> None:
        self._scanned_at = now
        pids = set(self._ps.pids())
        for pid in sorted((pids - self._examined) | self._due_for_recheck(pids)):
            if pid in self._watched:
                continue
            try:
                name = self._ps.Process(pid).name()
            except (self._ps.NoSuchProcess, self._ps.AccessDenied):
                continue
            if name in self._names:
                self._watch_pid(pid)
        self._examined = pids

    def _due_for_recheck(self, pids: set[int]) -> set[int]:
        known = sorted(self._examined & pids)
        if not known:
            return set()
        share = -(-len(known) // RECHECK_SHARE)
        start = self._recheck_from % len(known)
        self._recheck_from = start + share
        return set((known[start:] + known[:start])[:share])
