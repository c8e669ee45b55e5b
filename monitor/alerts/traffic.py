"""Rule kinds over request traffic: latency percentile, error rate, and silence (no data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.alerts.observations import Observation, check_options, option_seconds
from monitor.alerts.sources import MetricSource

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig

DEFAULT_WINDOW = 300.0


def _services(rule: AlertRuleConfig, source: MetricSource) -> list[str]:
    return [rule.service] if rule.service else source.services()


class Latency:
    """A latency percentile over the window above ``threshold`` milliseconds."""

    name = "latency"
    description = "latency percentile `metric` (p50, p95, p99; default p95) over options.window > threshold ms"
    PERCENTILES = ("p95", "p50", "p99")

    def check(self, rule: AlertRuleConfig) -> None:
        """Percentile and window must be valid; the bound positive."""
        check_options(rule, ("window", "min_count"))
        option_seconds(rule, "window", DEFAULT_WINDOW)
        if (rule.metric or "p95") not in self.PERCENTILES:
            raise ValueError(
                f"metric: expected one of {', '.join(self.PERCENTILES)} for kind 'latency', got {rule.metric!r}"
            )
        if rule.threshold <= 0:
            raise ValueError(f"threshold: expected a latency bound in milliseconds > 0, got {rule.threshold}")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per service with enough requests in the window."""
        window = option_seconds(rule, "window", DEFAULT_WINDOW)
        percentile = rule.metric or "p95"
        min_count = int(rule.options.get("min_count", 1))
        out = []
        for service in _services(rule, source):
            traffic = source.traffic(service, now - window, now, rule.model_version)
            value = traffic.percentiles_ms.get(percentile)
            if value is None or traffic.count < min_count:
                continue
            summary = (
                f"{service}: {percentile} latency {value:.1f} ms over {window / 60:g} min (bound {rule.threshold:g} ms)"
            )
            out.append(Observation({"service": service}, value, value > rule.threshold, summary))
        return out


class ErrorRate:
    """Share of failed requests over the window above ``threshold``."""

    name = "error_rate"
    description = "errors / requests over options.window > threshold (0..1)"

    def check(self, rule: AlertRuleConfig) -> None:
        """Threshold is a share; window valid."""
        check_options(rule, ("window", "min_count"))
        option_seconds(rule, "window", DEFAULT_WINDOW)
        if not 0 <= rule.threshold < 1:
            raise ValueError(f"threshold: expected an error share between 0 and 1, got {rule.threshold}")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per service with requests in the window."""
        window = option_seconds(rule, "window", DEFAULT_WINDOW)
        min_count = int(rule.options.get("min_count", 1))
        out = []
        for service in _services(rule, source):
            traffic = source.traffic(service, now - window, now, rule.model_version)
            if traffic.count < max(1, min_count):
                continue
            rate = traffic.error_rate
            summary = (
                f"{service}: {rate:.1%} of {traffic.count} requests failed over {window / 60:g} min "
                f"(threshold {rule.threshold:.1%})"
            )
            out.append(Observation({"service": service}, rate, rate > rule.threshold, summary))
        return out


class NoData:
    """No prediction received for more than ``threshold`` minutes."""

    name = "no_data"
    description = "no prediction received for more than `threshold` minutes"

    def check(self, rule: AlertRuleConfig) -> None:
        """Threshold is minutes, positive."""
        check_options(rule, ())
        if rule.threshold <= 0:
            raise ValueError(f"threshold: expected minutes without data > 0 for kind 'no_data', got {rule.threshold}")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per service."""
        out = []
        for service in _services(rule, source):
            last = source.last_prediction_at(service)
            if last is None:
                summary = f"{service}: no prediction received yet"
                out.append(Observation({"service": service}, None, True, summary))
                continue
            minutes = max(0.0, (now - last) / 60)
            summary = f"{service}: last prediction {minutes:.1f} min ago (limit {rule.threshold:g} min)"
            out.append(Observation({"service": service}, minutes, minutes > rule.threshold, summary))
        return out
