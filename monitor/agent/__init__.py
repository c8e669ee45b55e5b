"""``mlwatch agent``: host, process and GPU samples, each from a small collector with ``collect()``.

>>> agent = Agent(default_collectors(pids=[1234]), SampleSender(url, token, "gpu-box-1"))
>>> agent.run(interval=10)
"""

from __future__ import annotations

from monitor.agent.gpu import GpuCollector
from monitor.agent.host import HostCollector
from monitor.agent.process import ProcessCollector
from monitor.agent.runner import Agent, Collector, SampleSender, default_collectors

__all__ = [
    "Agent",
    "Collector",
    "GpuCollector",
    "HostCollector",
    "ProcessCollector",
    "SampleSender",
    "default_collectors",
]
