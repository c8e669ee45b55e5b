"""Agent: CPU time (process time, not wall) of one sample of the host, processes and GPUs."""

from __future__ import annotations

import os
import time

from benchmarks.harness import Result
from monitor.agent import ProcessCollector, default_collectors

SAMPLES = 200


def main() -> list[Result]:
    """One full round of collectors, as `mlwatch agent` takes it each interval."""
    collectors = default_collectors(pids=[os.getpid(), os.getppid()], names=["postgres"])
    for collector in collectors:
        collector.collect()  # warm: process discovery, first CPU readings
    start = time.process_time()
    count = 0
    for _ in range(SAMPLES):
        for collector in collectors:
            count += len(collector.collect())
    per_sample = (time.process_time() - start) / SAMPLES * 1000.0
    return [
        Result(f"agent: CPU per sample (host + {count // SAMPLES - 1} process/GPU records)", per_sample, "ms", "<= 5"),
        Result("agent: CPU per sample when it also rescans names (every 30 s)", _with_rescan(), "ms", "<= 5"),
        Result("agent: CPU of the first sample, which reads every process name", _first_scan(), "ms", "<= 5"),
    ]


def _with_rescan() -> float:
    """A sample that also looks for new processes named by --process-name."""
    collector = ProcessCollector(names=["postgres"], rescan=0.0)
    collector.collect()
    start = time.process_time()
    for _ in range(SAMPLES // 4):
        collector.collect()
    return (time.process_time() - start) / (SAMPLES // 4) * 1000.0


def _first_scan() -> float:
    """The worst sample, once at start: the scan that reads the name of every process on the host."""
    start = time.process_time()
    for _ in range(SAMPLES // 4):
        ProcessCollector(names=["postgres"]).collect()
    return (time.process_time() - start) / (SAMPLES // 4) * 1000.0
