"""Alert rules as Prometheus alerting rules over mlwatch's own ``/metrics`` (``mlwatch rules export``).

    >>> document, skipped = export_rules(settings.alerts)
    >>> document["groups"][0]["rules"][0]
    {'alert': 'dataset-drift', 'expr': 'mlwatch_drift_share{service="credit"} > 0.3', 'for': '10m', ...}

One translator per rule kind, keyed by the kind's name as ``KINDS`` is (a test keeps the two
tables equal). A kind or an option the metrics cannot express is skipped, with the reason:

- ``drift_share``, ``feature_drift``, ``prediction_drift``: the latest check's gauges
  (``mlwatch_drift_share``, ``mlwatch_feature_drifted``, ``mlwatch_prediction_drifted``);
  ``options.min_rows`` becomes ``and on (service) mlwatch_check_rows >= N``. The check gauges
  carry no ``model_version`` and no segment, so a rule limited to one version or one segment
  (``options.segment``) is skipped.
- ``latency``, ``error_rate``: rates of the request histogram and counters over
  ``options.window`` (default 5m), per service; ``model_version`` is a label there.
- ``no_data``: no increase of ``mlwatch_requests_total`` for ``threshold`` minutes. The
  counters come from per-minute rollups, so Prometheus sees silence up to a minute late; a
  service that never sent a prediction has no series, so it does not fire there as it does here.
- ``quality_decay`` (decay against the reference is not exported, only the quality itself)
  and ``resource`` (host and GPU samples are not exported): skipped.

The alert is named after the rule and labelled ``rule``, ``kind`` and ``severity`` as the
``alertmanager`` format labels mlwatch's own alerts, so routes and inhibitions written for
one match the other. Label values and annotations are Go templates to Prometheus: a ``{{``
in a rule's name or labels is written so that it prints as typed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.alerts.observations import option_seconds
from monitor.alerts.traffic import DEFAULT_WINDOW
from monitor.webhooks.alertmanager import label_name

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig

GROUP = "mlwatch"
_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


class Unexpressible(ValueError):
    """A rule that mlwatch's metrics cannot express; the message says why."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule left out of the export, and why."""

    rule: str
    kind: str
    reason: str


def export_rules(rules: Sequence[AlertRuleConfig]) -> tuple[dict[str, Any], list[Skipped]]:
    """The Prometheus rules document of ``rules`` (one group), and the rules left out with their reasons."""
    exported, skipped = [], []
    for rule in rules:
        try:
            exported.append(alerting_rule(rule))
        except Unexpressible as exc:
            skipped.append(Skipped(rule.name, rule.kind, str(exc)))
    return {"groups": [{"name": GROUP, "rules": exported}]}, skipped


def alerting_rule(rule: AlertRuleConfig) -> dict[str, Any]:
    """One alerting rule: ``alert``, ``expr``, ``for``, ``labels``, ``annotations``; Unexpressible if it cannot be."""
    expr, summary = TRANSLATORS[rule.kind](rule)
    out: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if rule.for_ > 0:
        out["for"] = duration(rule.for_)
    # the labels mlwatch's own alerts carry (lifecycle.alert_labels): the rule's own labels win
    labels = {"rule": rule.name, "kind": rule.kind, "severity": rule.severity}
    labels.update({label_name(k): v for k, v in rule.labels.items()})
    out["labels"] = {k: literal(v) for k, v in labels.items()}
    out["annotations"] = {"summary": summary, "description": f"mlwatch rule {literal(rule.name)} ({rule.kind})"}
    return out


def duration(seconds: float) -> str:
    """A Prometheus duration: ``90s``, ``15m``, ``1h30m``, ``500ms``."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    left, parts = int(seconds), []
    for unit, size in _UNITS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def literal(text: str) -> str:
    """``text`` as a Go template that prints it as typed (``{{`` opens an action)."""
    return text.replace("{{", '{{ "{{" }}')


def selector(metric: str, rule: AlertRuleConfig, **more: str | None) -> str:
    """``metric{service="...",...}`` with the rule's service and any other given label, escaped."""
    matchers = {"service": rule.service, **more}
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in matchers.items() if v is not None)
    return f"{metric}{{{inner}}}" if inner else metric


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _check_gauge(rule: AlertRuleConfig, expr: str) -> str:
    if rule.model_version:
        raise Unexpressible("model_version: the check gauges carry no model_version label")
    if "segment" in rule.options:
        raise Unexpressible("options.segment: the check gauges carry no segment label")
    min_rows = int(rule.options.get("min_rows", 0))
    return f"{expr} and on (service) {selector('mlwatch_check_rows', rule)} >= {min_rows}" if min_rows else expr


def _drift_share(rule: AlertRuleConfig) -> tuple[str, str]:
    expr = _check_gauge(rule, f"{selector('mlwatch_drift_share', rule)} > {rule.threshold:g}")
    share = "{{ $labels.service }}: {{ $value | humanizePercentage }} of features drifted"
    return expr, f"{share} (threshold {rule.threshold:.0%})"


def _feature_drift(rule: AlertRuleConfig) -> tuple[str, str]:
    expr = _check_gauge(rule, f"{selector('mlwatch_feature_drifted', rule, feature=rule.feature)} == 1")
    return expr, "{{ $labels.service }}: feature {{ $labels.feature }} drifted in the latest check"


def _prediction_drift(rule: AlertRuleConfig) -> tuple[str, str]:
    expr = _check_gauge(rule, f"{selector('mlwatch_prediction_drifted', rule)} == 1")
    return expr, "{{ $labels.service }}: predictions drifted in the latest check"


def _window(rule: AlertRuleConfig) -> str:
    return duration(option_seconds(rule, "window", DEFAULT_WINDOW))


def _increase(metric: str, rule: AlertRuleConfig, window: str) -> str:
    return f"sum by (service) (increase({selector(metric, rule, model_version=rule.model_version)}[{window}]))"


def _min_count(rule: AlertRuleConfig, expr: str, window: str) -> str:
    min_count = int(rule.options.get("min_count", 1))
    if min_count <= 1:
        return expr
    return f"({expr}) and on (service) {_increase('mlwatch_requests_total', rule, window)} >= {min_count}"


def _latency(rule: AlertRuleConfig) -> tuple[str, str]:
    percentile, window = rule.metric or "p95", _window(rule)
    buckets = selector("mlwatch_request_latency_seconds_bucket", rule, model_version=rule.model_version)
    rate = f"sum by (service, le) (rate({buckets}[{window}]))"
    expr = _min_count(rule, f"histogram_quantile({_QUANTILES[percentile]}, {rate}) * 1000 > {rule.threshold:g}", window)
    value = '{{ $value | printf "%.1f" }}'
    return (
        expr,
        f"{{{{ $labels.service }}}}: {percentile} latency {value} ms over {window} (bound {rule.threshold:g} ms)",
    )


def _error_rate(rule: AlertRuleConfig) -> tuple[str, str]:
    window = _window(rule)
    errors, requests = (_increase(m, rule, window) for m in ("mlwatch_request_errors_total", "mlwatch_requests_total"))
    ratio = f"{errors} / {requests}"
    expr = _min_count(rule, f"{ratio} > {rule.threshold:g}", window)
    return expr, f"{{{{ $labels.service }}}}: {{{{ $value | humanizePercentage }}}} of requests failed over {window}"


def _no_data(rule: AlertRuleConfig) -> tuple[str, str]:
    if rule.model_version:
        raise Unexpressible("model_version: kind no_data watches a whole service")
    window = duration(rule.threshold * 60)
    expr = f"{_increase('mlwatch_requests_total', rule, window)} == 0"
    return expr, f"{{{{ $labels.service }}}}: no prediction received for {window}"


def _not_exported(why: str) -> Callable[[AlertRuleConfig], tuple[str, str]]:
    def refuse(rule: AlertRuleConfig) -> tuple[str, str]:
        raise Unexpressible(why)

    return refuse


TRANSLATORS: dict[str, Callable[[AlertRuleConfig], tuple[str, str]]] = {
    "drift_share": _drift_share,
    "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift,
    "quality_decay": _not_exported(
        "kind quality_decay compares quality with the reference, and /metrics exports only the quality itself"
    ),
    "latency": _latency,
    "error_rate": _error_rate,
    "resource": _not_exported(
        "kind resource watches agent samples (host, process, GPU), which /metrics does not export"
    ),
    "no_data": _no_data,
}
"""How each rule kind becomes a PromQL expression and a summary template, by kind name."""
