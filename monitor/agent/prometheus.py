"""The Prometheus collector: scrapes a text-format endpoint (TorchServe's metrics API, any exporter).

Each scrape becomes one ``process`` sample per model the endpoint reports (label ``model_name``
or ``ModelName``), named ``<job>/<model>``, and one named ``<job>`` for the rest (host-level
series). A series whose other labels vary keeps them in its key: ``WorkerLoadTime{WorkerName=W-9000}``.

>>> PrometheusCollector("http://127.0.0.1:8082/metrics").collect()
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx

from monitor.records import HostSample

log = logging.getLogger("monitor.agent")

MODEL_LABELS = ("model_name", "ModelName")
DROPPED_LABELS = frozenset({*MODEL_LABELS, "hostname", "Hostname", "Level", "model_version"})
"""Labels that name where a series comes from, not what it measures."""
MAX_METRICS = 500
"""Metrics of one sample that the API accepts (``HostSampleIn.metrics``); past it a group is cut."""

_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every series line of a Prometheus text exposition; comments skipped."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SERIES.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        labelled = {
            k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") for k, v in _LABEL.findall(labels or "")
        }
        yield name, labelled, number


def metric_key(name: str, labels: dict[str, str]) -> str:
    """The sample's key of one series: its name, and the labels that tell it from its siblings."""
    kept = sorted((k, v) for k, v in labels.items() if k not in DROPPED_LABELS)
    return f"{name}{{{','.join(f'{k}={v}' for k, v in kept)}}}" if kept else name


class PrometheusCollector:
    """Scrapes ``url`` at every ``collect()``; an endpoint that does not answer gives nothing, said once."""

    def __init__(
        self,
        url: str,
        *,
        job: str | None = None,
        get: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.job = job or urlsplit(url).netloc
        self._get = get or (lambda u: _fetch(u, timeout))
        self._clock = clock
        self._failing = False
        self._cut: set[str] = set()

    def collect(self) -> tuple[HostSample, ...]:
        """One ``process`` sample per model of the endpoint, and one for its other series."""
        try:
            text = self._get(self.url)
        except httpx.HTTPError as exc:
            if not self._failing:
                log.warning("mlwatch agent: cannot scrape %s (%s); trying again each interval", self.url, exc)
            self._failing = True
            return ()
        self._failing = False
        return self._samples(text)

    def _samples(self, text: str) -> tuple[HostSample, ...]:
        now = self._clock()
        groups: dict[str, dict[str, float]] = {}
        for name, labels, value in parse(text):
            if not math.isfinite(value):
                continue
            model = next((labels[k] for k in MODEL_LABELS if k in labels), None)
            group = f"{self.job}/{model}" if model else self.job
            metrics = groups.setdefault(group, {})
            if len(metrics) < MAX_METRICS:
                metrics[metric_key(name, labels)] = value
            elif group not in self._cut:
                self._cut.add(group)
                log.warning(
                    "mlwatch agent: %s has more than %d series; the first %d are sent", group, MAX_METRICS, MAX_METRICS
                )
        return tuple(HostSample(now, "process", group, metrics) for group, metrics in groups.items())


def _fetch(url: str, timeout: float) -> str:
    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return response.text
