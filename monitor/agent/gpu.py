"""The GPU collector: utilization, memory, temperature, power and clocks of every NVIDIA GPU, via NVML.

Without a driver (or without ``pynvml``) it says so once and returns nothing; a reading a
GPU does not support (power on some boards) is left out, also said once.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from monitor.records import HostSample

log = logging.getLogger("monitor.agent")
Reading = Callable[[Any, Any], dict[str, float]]


class GpuCollector:
    """Samples each GPU, and the GPU memory used by the processes ``pids()`` returns."""

    def __init__(
        self,
        nvml: Any = None,
        *,
        pids: Callable[[], tuple[int, ...]] = tuple,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pids = pids
        self._clock = clock
        self._said: set[str] = set()
        self._nvml, self._handles = self._open(nvml)

    @property
    def available(self) -> bool:
        """True when NVML answered and found at least one GPU."""
        return bool(self._handles)

    def _open(self, nvml: Any) -> tuple[Any, tuple[Any, ...]]:
        try:
            nvml = nvml if nvml is not None else importlib.import_module("pynvml")
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            return nvml, tuple(nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count))
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
            log.warning(
                "mlwatch agent: no NVIDIA GPU metrics (%s: %s); host and process metrics go on",
                type(exc).__name__,
                exc,
            )
            return nvml, ()

    def collect(self) -> tuple[HostSample, ...]:
        """One sample per GPU, plus one per watched process that holds GPU memory."""
        now = self._clock()
        samples: list[HostSample] = []
        watched = set(self._pids())
        for index, handle in enumerate(self._handles):
            metrics: dict[str, float] = {}
            for reading in (_utilization, _memory, _temperature, _power, _clocks):
                metrics.update(self._read(reading, handle, index))
            samples.append(HostSample(now, "gpu", str(index), metrics))
            samples.extend(self._processes(now, index, handle, watched))
        return tuple(samples)

    def _read(self, reading: Reading, handle: Any, index: int) -> dict[str, float]:
        try:
            return reading(self._nvml, handle)
        except self._nvml.NVMLError as exc:
            self._say_once(
                f"{reading.__name__}:{index}", f"GPU {index}: {reading.__name__.strip('_')} unavailable ({exc})"
            )
            return {}

    def _processes(self, now: float, index: int, handle: Any, watched: set[int]) -> list[HostSample]:
        if not watched:
            return []
        try:
            running = self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except self._nvml.NVMLError as exc:
            self._say_once(f"processes:{index}", f"GPU {index}: per-process memory unavailable ({exc})")
            return []
        return [
            HostSample(
                now,
                "gpu",
                f"{index}/{p.pid}",
                {"gpu": float(index), "pid": float(p.pid), "process_memory_used_bytes": float(p.usedGpuMemory or 0)},
            )
            for p in running
            if p.pid in watched
        ]

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning("mlwatch agent: %s", message)


def _utilization(nvml: Any, handle: Any) -> dict[str, float]:
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    return {"utilization_percent": float(rates.gpu), "memory_utilization_percent": float(rates.memory)}


def _memory(nvml: Any, handle: Any) -> dict[str, float]:
    info = nvml.nvmlDeviceGetMemoryInfo(handle)
    return {"memory_used_bytes": float(info.used), "memory_total_bytes": float(info.total)}


def _temperature(nvml: Any, handle: Any) -> dict[str, float]:
    sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
    return {"temperature_c": float(nvml.nvmlDeviceGetTemperature(handle, sensor))}


def _power(nvml: Any, handle: Any) -> dict[str, float]:
    return {"power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0}  # NVML answers milliwatts


def _clocks(nvml: Any, handle: Any) -> dict[str, float]:
    sm, mem = getattr(nvml, "NVML_CLOCK_SM", 1), getattr(nvml, "NVML_CLOCK_MEM", 2)
    return {
        "sm_clock_mhz": float(nvml.nvmlDeviceGetClockInfo(handle, sm)),
        "memory_clock_mhz": float(nvml.nvmlDeviceGetClockInfo(handle, mem)),
    }
