"""The host collector: CPU (total and per core), load, memory, swap, disk and network I/O."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from monitor.records import HostSample


class HostCollector:
    """Samples the whole machine with psutil; I/O counters come with per-second rates."""

    def __init__(self, psutil: Any = None, *, clock: Callable[[], float] = time.time) -> None:
        if psutil is None:
            import psutil as psutil_module

            psutil = psutil_module
        self._ps = psutil
        self._clock = clock
        self._ps.cpu_percent(percpu=True)  # the first reading primes the counters
        self._previous: tuple[float, dict[str, float]] | None = None

    def collect(self) -> tuple[HostSample, ...]:
        """One sample of the host."""
        now = self._clock()
        metrics = self._cpu()
        metrics.update(self._memory())
        counters = self._counters()
        metrics.update(counters)
        metrics.update(self._rates(now, counters))
        self._previous = (now, counters)
        return (HostSample(now, "host", "", metrics),)

    def _cpu(self) -> dict[str, float]:
        cores = [float(c) for c in self._ps.cpu_percent(percpu=True)]
        metrics = {"cpu_percent": sum(cores) / len(cores) if cores else 0.0, "cpu_count": float(len(cores))}
        metrics.update({f"cpu{i}_percent": c for i, c in enumerate(cores)})
        load = self._ps.getloadavg()
        metrics.update({"load1": float(load[0]), "load5": float(load[1]), "load15": float(load[2])})
        return metrics

    def _memory(self) -> dict[str, float]:
        memory, swap = self._ps.virtual_memory(), self._ps.swap_memory()
        return {
            "memory_total_bytes": float(memory.total),
            "memory_used_bytes": float(memory.used),
            "memory_available_bytes": float(memory.available),
            "memory_percent": float(memory.percent),
            "swap_total_bytes": float(swap.total),
            "swap_used_bytes": float(swap.used),
            "swap_percent": float(swap.percent),
        }

    def _counters(self) -> dict[str, float]:
        counters: dict[str, float] = {}
        disk = self._ps.disk_io_counters()
        if disk is not None:  # None on machines without disks psutil can see
            counters.update({"disk_read_bytes": float(disk.read_bytes), "disk_write_bytes": float(disk.write_bytes)})
        net = self._ps.net_io_counters()
        if net is not None:
            counters.update({"net_sent_bytes": float(net.bytes_sent), "net_recv_bytes": float(net.bytes_recv)})
        return counters

    def _rates(self, now: float, counters: dict[str, float]) -> dict[str, float]:
        if self._previous is None or now <= self._previous[0]:
            return {}
        then, before = self._previous
        elapsed = now - then
        return {
            f"{name.removesuffix('_bytes')}_bytes_per_s": max(0.0, value - before[name]) / elapsed
            for name, value in counters.items()
            if name in before
        }
