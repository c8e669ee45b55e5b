"""Rule kinds over the latest drift/quality check: drift share, one feature, predictions, quality decay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from monitor.alerts.observations import Observation, check_options, option_text
from monitor.alerts.sources import CheckView, MetricSource

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig


CHECK_OPTIONS = ("min_rows",)
"""Options every kind over checks takes: ``min_rows`` ignores checks of fewer rows (default 0)."""


def checked_services(rule: AlertRuleConfig, source: MetricSource) -> Iterator[tuple[str, CheckView]]:
    """(service, latest usable check) for the rule's service, or every service when it names none."""
    for service in [rule.service] if rule.service else source.services():
        check = source.latest_check(service)
        if check is None or check.status != "ok":
            continue  # nothing judged yet: keep whatever state the alert has
        if (check.summary.get("rows") or 0) < int(rule.options.get("min_rows", 0)):
            continue  # too few rows to judge (a window that has barely started): keep the state
        if rule.model_version and check.model_version != rule.model_version:
            continue
        yield service, check


class DriftShare:
    """Share of drifted features in the latest check above ``threshold``."""

    name = "drift_share"
    description = "share of drifted features in the latest check > threshold (0..1)"

    def check(self, rule: AlertRuleConfig) -> None:
        """Threshold is a share."""
        check_options(rule, CHECK_OPTIONS)
        if not 0 <= rule.threshold <= 1:
            raise ValueError(f"threshold: expected a share between 0 and 1, got {rule.threshold}")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per checked service."""
        out = []
        for service, check in checked_services(rule, source):
            share = check.summary.get("drift_share")
            if share is None:
                continue
            drifted = ", ".join(check.summary.get("drifted_features") or []) or "none"
            summary = f"{service}: {share:.0%} of features drifted (threshold {rule.threshold:.0%}; drifted: {drifted})"
            out.append(Observation({"service": service}, float(share), share > rule.threshold, summary, _from(check)))
        return out


class FeatureDrift:
    """One named feature drifted in the latest check (by its own test's threshold)."""

    name = "feature_drift"
    description = "the feature named by `feature` drifted in the latest check"

    def check(self, rule: AlertRuleConfig) -> None:
        """Needs ``feature``."""
        check_options(rule, CHECK_OPTIONS)
        if not rule.feature:
            raise ValueError("feature: required for kind 'feature_drift' (the name of the feature to watch)")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per checked service that has the feature."""
        out = []
        for service, check in checked_services(rule, source):
            found = next((f for f in check.features if f.get("name") == rule.feature), None)
            if found is None:
                continue
            score = found.get("score")
            method = found.get("method", "drift test")
            state = "drifted" if found.get("drifted") else "is stable"
            limit = found.get("threshold")
            summary = f"{service}: feature {rule.feature} {state} ({method} score {score}, threshold {limit})"
            scope = {"service": service, "feature": str(rule.feature)}
            out.append(Observation(scope, _number(score), bool(found.get("drifted")), summary, _from(check)))
        return out


class PredictionDrift:
    """The model's predictions drifted in the latest check."""

    name = "prediction_drift"
    description = "the prediction column drifted in the latest check"

    def check(self, rule: AlertRuleConfig) -> None:
        """No extra fields."""
        check_options(rule, CHECK_OPTIONS)

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per checked service with a prediction drift result."""
        out = []
        for service, check in checked_services(rule, source):
            found = check.summary.get("prediction_drift")
            if not found:
                continue
            drifted = bool(found.get("drifted"))
            state = "drifted" if drifted else "are stable"
            summary = f"{service}: predictions {state} ({found.get('method')} score {found.get('score')})"
            value = _number(found.get("score"))
            out.append(Observation({"service": service}, value, drifted, summary, _from(check)))
        return out


class QualityDecay:
    """Quality fell by more than ``threshold`` versus the reference (positive decay is worse)."""

    name = "quality_decay"
    description = "decay of `metric` > threshold; options.mode absolute|relative, options.source realized|estimated"
    MODES = ("absolute", "relative")
    SOURCES = ("realized", "estimated")

    def check(self, rule: AlertRuleConfig) -> None:
        """Mode and source must be known."""
        check_options(rule, (*CHECK_OPTIONS, "mode", "source"))
        option_text(rule, "mode", self.MODES)
        option_text(rule, "source", self.SOURCES)

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per checked service that reports the metric's decay."""
        mode = option_text(rule, "mode", self.MODES)
        origin = option_text(rule, "source", self.SOURCES)
        key = "decay" if origin == "realized" else "estimated_decay"
        out = []
        for service, check in checked_services(rule, source):
            decay = check.summary.get(key) or {}
            metric = rule.metric or next(iter(sorted(decay)), None)
            value = _number((decay.get(metric) or {}).get(mode)) if metric else None
            if value is None:
                continue
            unit = "%" if mode == "relative" else ""
            shown = value * 100 if mode == "relative" else value
            summary = f"{service}: {origin} {metric} fell by {shown:.3g}{unit} ({mode}; threshold {rule.threshold:g})"
            scope = {"service": service, "metric": str(metric)}
            out.append(Observation(scope, value, value > rule.threshold, summary, _from(check)))
        return out


def _from(check: CheckView) -> dict[str, Any]:
    """Details that tie an alert to the check that judged it (the dashboard links the report)."""
    return {"check_id": check.id} if check.id is not None else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
