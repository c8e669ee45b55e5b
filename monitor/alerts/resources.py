"""The resource rule kind: a host, process or GPU metric from the agent over a bound, per host and device.

The metric is named by the rule (``metric: cpu_percent``, ``utilization_percent``,
``memory_used_bytes`` ...), so the rule follows whatever the agent reports. One derived
metric is offered where the agent sends used and total bytes: ``memory_used_percent``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from monitor.alerts.observations import Observation, check_options, option_seconds, option_text
from monitor.alerts.sources import MetricSource

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig
    from monitor.records import HostSample

DEFAULT_WINDOW = 300.0
SAMPLE_KINDS = ("any", "host", "gpu", "process")
AGGREGATES = ("mean", "max", "last")


def metric_value(sample: HostSample, metric: str) -> float | None:
    """The value of ``metric`` in a sample, deriving ``memory_used_percent`` from bytes when needed."""
    value = sample.metrics.get(metric)
    if value is None and metric == "memory_used_percent":
        used, total = sample.metrics.get("memory_used_bytes"), sample.metrics.get("memory_total_bytes")
        value = 100.0 * used / total if used is not None and total else None
    return float(value) if value is not None else None


def _aggregate(values: list[float], how: str) -> float:
    if how == "max":
        return max(values)
    if how == "last":
        return values[-1]
    return sum(values) / len(values)


class Resource:
    """An agent metric over ``threshold`` (aggregated over the window), one alert per host and device."""

    name = "resource"
    description = (
        "agent metric `metric` (e.g. cpu_percent, memory_percent, utilization_percent, memory_used_percent) "
        "> threshold; options.window, options.sample_kind any|host|gpu|process, options.aggregate mean|max|last"
    )

    def check(self, rule: AlertRuleConfig) -> None:
        """Needs ``metric``; options valid."""
        check_options(rule, ("window", "sample_kind", "aggregate"))
        if not rule.metric:
            raise ValueError("metric: required for kind 'resource' (an agent metric such as cpu_percent)")
        option_seconds(rule, "window", DEFAULT_WINDOW)
        option_text(rule, "sample_kind", SAMPLE_KINDS)
        option_text(rule, "aggregate", AGGREGATES)

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per (host, device) that reported the metric in the window."""
        window = option_seconds(rule, "window", DEFAULT_WINDOW)
        kind = option_text(rule, "sample_kind", SAMPLE_KINDS)
        how = option_text(rule, "aggregate", AGGREGATES)
        metric = str(rule.metric)
        series: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for host, sample in source.host_samples(now - window, now, rule.host):
            value = metric_value(sample, metric) if kind in ("any", sample.kind) else None
            if value is not None:
                series[(host, sample.kind, sample.name)].append(value)
        out = []
        for (host, sample_kind, device), values in sorted(series.items()):
            value = _aggregate(values, how)
            where = f"{host}" + (f" {sample_kind} {device}" if device else "")
            summary = f"{where}: {metric} {how} {value:.4g} over {window / 60:g} min (bound {rule.threshold:g})"
            scope = {"host": host, "device": f"{sample_kind}:{device}" if device else sample_kind, "metric": metric}
            out.append(Observation(scope, value, value > rule.threshold, summary))
        return out
