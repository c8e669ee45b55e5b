"""The agent's collectors with a fake NVML and psutil, the real psutil, and `mlwatch agent` end to end."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.agent import Agent, GpuCollector, HostCollector, ProcessCollector, SampleSender, default_collectors
from monitor.agent.process import RECHECK_SHARE
from monitor.records import HostSample
from monitor.sdk.transport import Retryable
from monitor.store import Store
from tests.collectors.fakes import FakeNVML, FakeProcess, FakePsutil
from tests.conftest import RunningServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_host_collector_reports_cpu_per_core_memory_and_io_rates() -> None:
    clock = Clock()
    collector = HostCollector(FakePsutil([]), clock=clock)
    first = collector.collect()[0]
    clock.now += 2.0
    [second] = collector.collect()
    assert (second.kind, second.name) == ("host", "")
    m = second.metrics
    assert (m["cpu_percent"], m["cpu3_percent"], m["cpu_count"], m["load1"]) == (25.0, 40.0, 4.0, 1.5)
    assert (m["memory_percent"], m["swap_used_bytes"]) == (25.0, 0.0)
    assert (m["disk_read_bytes_per_s"], m["net_recv_bytes_per_s"]) == (500.0, 2000.0)
    assert "disk_read_bytes_per_s" not in first.metrics


def test_process_collector_finds_by_pid_and_name_and_forgets_exited_ones(caplog: pytest.LogCaptureFixture) -> None:
    model, other, worker = FakeProcess(10, "model-server"), FakeProcess(11, "bash"), FakeProcess(12, "gunicorn")
    collector = ProcessCollector([10, 99], ["gunicorn"], psutil=FakePsutil([model, other, worker]), clock=Clock())
    samples = collector.collect()
    assert [(s.name, s.metrics["threads"], s.metrics["cpu_percent"]) for s in samples] == [
        ("10/model-server", 4.0, 12.5),
        ("12/gunicorn", 4.0, 12.5),
    ]
    assert "cannot watch process 99" in caplog.text
    model.alive = False
    assert [s.name for s in collector.collect()] == ["12/gunicorn"]
    assert collector.watched_pids() == (12,)


def test_name_rescans_read_new_processes_and_a_share_of_the_others_in_turn() -> None:
    clock = Clock()
    others = [FakeProcess(100 + i, "bash") for i in range(2 * RECHECK_SHARE)]
    model = FakeProcess(12, "model-server")
    ps = FakePsutil([*others, model])
    collector = ProcessCollector(names=["model-server"], psutil=ps, clock=clock, rescan=1.0)
    assert collector.collect() and collector.watched_pids() == (12,)
    assert all(p.name_reads == 1 for p in others)  # the first scan reads every name
    clock.now += 1.0
    late = FakeProcess(13, "model-server")
    ps.processes[13] = late
    collector.collect()
    assert collector.watched_pids() == (12, 13)
    assert sum(p.name_reads for p in others) == len(others) + 2  # a twentieth of them read again
    reused = others[-1].pid
    ps.processes[reused] = FakeProcess(reused, "model-server")  # that PID now is another process
    for _ in range(RECHECK_SHARE):
        clock.now += 1.0
        collector.collect()
    assert collector.watched_pids() == (12, 13, reused)
    rechecks = sum(p.name_reads for p in others) - len(others)
    assert rechecks <= (RECHECK_SHARE + 1) * -(-(len(others) + 2) // RECHECK_SHARE)  # a share per rescan, no more


def test_gpu_collector_reads_every_gpu_and_the_memory_of_watched_processes(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNVML(processes={0: [(10, 3 * 2**30), (77, 2**30)]})
    collector = GpuCollector(nvml, pids=lambda: (10,), clock=Clock())
    first = collector.collect()
    collector.collect()
    by_name = {s.name: s.metrics for s in first}
    assert set(by_name) == {"0", "1", "0/10"}
    assert by_name["0"] == {
        "utilization_percent": 40.0,
        "memory_utilization_percent": 10.0,
        "memory_used_bytes": float(2**30),
        "memory_total_bytes": float(80 * 2**30),
        "temperature_c": 60.0,
        "power_w": 250.5,
        "sm_clock_mhz": 1980.0,
        "memory_clock_mhz": 2619.0,
    }
    assert "power_w" not in by_name["1"] and by_name["1"]["temperature_c"] == 61.0
    assert by_name["0/10"] == {"gpu": 0.0, "pid": 10.0, "process_memory_used_bytes": float(3 * 2**30)}
    assert caplog.text.count("GPU 1: power unavailable") == 1


def test_without_an_nvidia_driver_the_real_nvml_path_says_so_once_and_returns_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.agent")
    collector = GpuCollector()  # the real pynvml (nvidia-ml-py); no driver on this machine
    if collector.available:
        pytest.skip("this machine has an NVIDIA driver; the degraded path cannot be shown here")
    assert collector.collect() == () and collector.collect() == ()
    assert caplog.text.count("no NVIDIA GPU metrics") == 1


def test_one_real_psutil_sample_of_this_host_and_this_process() -> None:
    host, processes, gpus = default_collectors(pids=[os.getpid()], nvml=FakeNVML())
    [sample] = host.collect()
    assert sample.metrics["memory_total_bytes"] > 0 and sample.metrics["cpu_count"] == os.cpu_count()
    [me] = processes.collect()
    assert me.name.startswith(f"{os.getpid()}/") and me.metrics["rss_bytes"] > 10 * 2**20
    assert [s.name for s in gpus.collect()] == ["0", "1"]


class FlakySender:
    def __init__(self) -> None:
        self.up = False
        self.batches: list[list[HostSample]] = []

    def send(self, samples: list[HostSample]) -> None:
        if not self.up:
            raise Retryable("connection refused")
        self.batches.append(list(samples))


def test_agent_keeps_samples_while_the_server_is_away_and_survives_a_broken_collector() -> None:
    class Broken:
        def collect(self) -> tuple[HostSample, ...]:
            raise RuntimeError("sensor fell off")

    sender = FlakySender()
    agent = Agent([HostCollector(FakePsutil([]), clock=Clock()), Broken()], sender, sleep=lambda s: None)
    agent.run(1.0, ticks=3)
    assert sender.batches == [] and agent.pending == 3
    sender.up = True
    assert agent.tick() == 4 and agent.pending == 0
    assert [s.kind for s in sender.batches[0]] == ["host"] * 4


def _host_samples(api: RunningServer, host: str) -> list[HostSample]:
    store = Store.open(api.store_url)
    try:
        return [s for _, s in store.host_samples(0.0, time.time() + 600, host=host)]  # the fake clock is at 1000 s
    finally:
        store.close()


def test_samples_refused_for_the_token_are_kept_bounded_warned_once_a_minute_and_sent_with_a_new_token(
    api: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.agent")
    secret = tmp_path / "token"
    secret.write_text("revoked\n")
    clock = Clock()
    sender = SampleSender(api.url, None, "box-401", token_file=secret)
    agent = Agent([HostCollector(FakePsutil([]), clock=clock)], sender, max_buffer=4, clock=clock)
    for _ in range(5):
        assert agent.tick() == 0
        clock.now += 10.0
    assert (agent.pending, agent.dropped) == (4, 1)  # kept, within the bound
    assert caplog.text.count("refused the token") == 1
    clock.now += 60.0
    agent.tick()
    assert caplog.text.count("refused the token") == 2
    assert _host_samples(api, "box-401") == []
    secret.write_text(api.token)
    assert agent.tick() == 4 and agent.pending == 0
    assert len(_host_samples(api, "box-401")) == 4


def test_mlwatch_agent_once_stores_a_real_sample_through_the_api(api: RunningServer) -> None:
    env = {**os.environ, "MLWATCH_URL": api.url, "MLWATCH_TOKEN": api.token}
    cmd = [sys.executable, "-m", "monitor", "agent", "--once", "--host-name", "box-1", "--pid", str(os.getpid())]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    store = Store.open(api.store_url)
    try:
        found = store.host_samples(time.time() - 600, time.time() + 60, host="box-1")
    finally:
        store.close()
    kinds = {(s.kind, s.name.split("/")[0]) for _, s in found}
    assert ("host", "") in kinds and ("process", str(os.getpid())) in kinds
    down = subprocess.run([*cmd, "--url", "http://127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "sample(s) could not be sent to http://127.0.0.1:9" in down.stderr
