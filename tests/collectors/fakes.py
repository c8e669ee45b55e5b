"""Stand-ins for what cannot run here: an NVIDIA driver (NVML) and a machine with known numbers (psutil).

Both mimic the real modules' API (``pynvml`` from nvidia-ml-py, ``psutil``) closely enough
for the collectors; they are passed through the collectors' constructors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


class FakeNVML:
    """A two-GPU machine; GPU 1 cannot report power (like some boards)."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    class NVMLError(Exception):
        """pynvml's base error."""

    def __init__(self, processes: dict[int, list[tuple[int, int]]] | None = None) -> None:
        self.initialized = False
        self.processes = processes or {}

    def nvmlInit(self) -> None:
        self.initialized = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=40 + handle, memory=10 + handle)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=(handle + 1) * 2**30, total=80 * 2**30, free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 60 + handle

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if handle == 1:
            raise self.NVMLError("Not Supported")
        return 250_500  # milliwatts

    def nvmlDeviceGetClockInfo(self, handle: int, kind: int) -> int:
        return 1980 if kind == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.processes.get(handle, [])]


@dataclass
class FakeProcess:
    """A psutil.Process with fixed readings."""

    pid: int
    process_name: str
    rss: int = 100 * 2**20
    threads: int = 4
    alive: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    name_reads: int = 0

    def __post_init__(self) -> None:
        self.info = {"name": self.process_name}

    def name(self) -> str:
        self.name_reads += 1
        return self.process_name

    @contextmanager
    def oneshot(self) -> Iterator[None]:
        yield

    def cpu_percent(self, interval: float | None = None) -> float:
        self._check()
        return 12.5

    def memory_info(self) -> Any:
        self._check()
        return SimpleNamespace(rss=self.rss)

    def num_threads(self) -> int:
        self._check()
        return self.threads

    def _check(self) -> None:
        if not self.alive:
            raise FakePsutil.NoSuchProcess(self.pid)


class FakePsutil:
    """A 4-core host whose I/O counters grow by fixed amounts per reading."""

    class NoSuchProcess(Exception):
        """psutil.NoSuchProcess."""

    class AccessDenied(Exception):
        """psutil.AccessDenied."""

    def __init__(self, processes: list[FakeProcess]) -> None:
        self.processes = {p.pid: p for p in processes}
        self.reads = 0

    def cpu_percent(self, percpu: bool = False) -> list[float]:
        return [10.0, 20.0, 30.0, 40.0]

    def getloadavg(self) -> tuple[float, float, float]:
        return (1.5, 1.0, 0.5)

    def virtual_memory(self) -> Any:
        return SimpleNamespace(total=16 * 2**30, used=4 * 2**30, available=12 * 2**30, percent=25.0)

    def swap_memory(self) -> Any:
        return SimpleNamespace(total=2**30, used=0, percent=0.0)

    def disk_io_counters(self) -> Any:
        self.reads += 1
        return SimpleNamespace(read_bytes=1000 * self.reads, write_bytes=500 * self.reads)

    def net_io_counters(self) -> Any:
        return SimpleNamespace(bytes_sent=2000 * self.reads, bytes_recv=4000 * self.reads)

    def Process(self, pid: int) -> FakeProcess:
        if pid not in self.processes:
            raise self.NoSuchProcess(pid)
        return self.processes[pid]

    def pids(self) -> list[int]:
        return list(self.processes)
