"""Rule kinds over the latest drift/quality check: drift share, one feature, predictions, quality decay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from monitor.alerts.observations import Observation, check_options, option_text
from monitor.alerts.sources import CheckView, MetricSource
from monitor.check_summary import COHORT_METRICS, segment_label

if TYPE_CHECKING:
    from monitor.config import AlertRuleConfig


CHECK_OPTIONS = ("min_rows",)
"""Options every kind over checks takes: ``min_rows`` ignores checks of fewer rows (default 0)."""


def segment_option(rule: AlertRuleConfig, most: int) -> dict[str, str] | None:
    """``options.segment`` (``{region: eu}``; up to ``most`` columns) with its values as the check keys
    them, or None when the rule watches the whole service; ValueError naming the option otherwise."""
    given = rule.options.get("segment")
    if given is None:
        return None
    columns = "one column" if most == 1 else f"one to {most} columns"
    if not isinstance(given, dict) or not 1 <= len(given) <= most:
        raise ValueError(f"options.segment: expected a mapping of {columns} to a value, such as {{region: eu}}, "
                         f"got {given!r}")  # fmt: skip
    out = {}
    for column, value in given.items():
        if not isinstance(column, str) or not column or not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError(f"options.segment.{column}: expected a segment value (text or integer), got {value!r}")
        out[column] = str(value)
    return out


def checked_services(rule: AlertRuleConfig, source: MetricSource) -> Iterator[tuple[str, CheckView]]:
    """(service, latest usable check) for the rule's service, or every service when it names none."""
    for service in [rule.service] if rule.service else source.services():
        check = source.latest_check(service)
        if check is None or check.status != "ok":
            continue  # nothing judged yet: keep whatever state the alert has
        if check.summary.rows < int(rule.options.get("min_rows", 0)):
            continue  # too few rows to judge (a window that has barely started): keep the state
        if rule.model_version and check.model_version != rule.model_version:
            continue
        yield service, check


class DriftShare:
    """Share of drifted features in the latest check above ``threshold``."""

    name = "drift_share"
    description = "share of drifted features in the latest check > threshold (0..1)"

    def check(self, rule: AlertRuleConfig) -> None:
        """Threshold is a share; ``options.segment`` names one segment value (``{region: eu}``)."""
        check_options(rule, (*CHECK_OPTIONS, "segment"))
        segment_option(rule, 1)
        if not 0 <= rule.threshold <= 1:
            raise ValueError(f"threshold: expected a share between 0 and 1, got {rule.threshold}")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per checked service (that judged the rule's segment, when it names one)."""
        segment = segment_option(rule, 1)
        out = []
        for service, check in checked_services(rule, source):
            found = _segment_drift(check, segment) if segment else (check.summary.drift_share,
                                                                    check.summary.drifted_features)  # fmt: skip
            if found is None:
                continue
            share, names = found
            where = f"{service} {segment_label(segment)}" if segment else service
            drifted = ", ".join(names) or "none"
            summary = f"{where}: {share:.0%} of features drifted (threshold {rule.threshold:.0%}; drifted: {drifted})"
            scope = {"service": service, **({"segment": segment_label(segment)} if segment else {})}
            out.append(Observation(scope, share, share > rule.threshold, summary, _from(check)))
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
            found = check.summary.prediction_drift
            if found is None:
                continue
            state = "drifted" if found.drifted else "are stable"
            summary = f"{service}: predictions {state} ({found.method} score {found.score})"
            out.append(Observation({"service": service}, found.score, found.drifted, summary, _from(check)))
        return out


class QualityDecay:
    """Quality fell by more than ``threshold`` versus the reference (positive decay is worse)."""

    name = "quality_decay"
    description = "decay of `metric` > threshold; options.mode absolute|relative, options.source realized|estimated"
    MODES = ("absolute", "relative")
    SOURCES = ("realized", "estimated")

    def check(self, rule: AlertRuleConfig) -> None:
        """Mode and source must be known; ``options.segment`` names a cohort of one or two columns."""
        check_options(rule, (*CHECK_OPTIONS, "mode", "source", "segment"))
        option_text(rule, "mode", self.MODES)
        option_text(rule, "source", self.SOURCES)
        if segment_option(rule, 2) and rule.metric not in (None, *COHORT_METRICS.values()):
            known = ", ".join(sorted(COHORT_METRICS.values()))
            raise ValueError(f"metric: a segment's quality is measured as {known}, got {rule.metric!r}")

    def evaluate(self, rule: AlertRuleConfig, source: MetricSource, now: float) -> list[Observation]:
        """One observation per checked service that reports the metric's decay (of the rule's cohort, when
        it names one: that breaches only when the cohort's fall is significant)."""
        mode = option_text(rule, "mode", self.MODES)
        origin = option_text(rule, "source", self.SOURCES)
        segment = segment_option(rule, 2)
        if segment:
            return [o for service, check in checked_services(rule, source)
                    if (o := _cohort_decay(rule, service, check, segment, mode, origin)) is not None]  # fmt: skip
        out = []
        for service, check in checked_services(rule, source):
            decay = (check.summary.estimated_decay if origin == "estimated" else check.summary.decay) or {}
            metric = rule.metric or next(iter(sorted(decay)), None)
            change = decay.get(metric) if metric else None
            value = None if change is None else change.absolute if mode == "absolute" else change.relative
            if value is None:
                continue
            unit = "%" if mode == "relative" else ""
            shown = value * 100 if mode == "relative" else value
            summary = f"{service}: {origin} {metric} fell by {shown:.3g}{unit} ({mode}; threshold {rule.threshold:g})"
            scope = {"service": service, "metric": str(metric)}
            out.append(Observation(scope, value, value > rule.threshold, summary, _from(check)))
        return out


def _segment_drift(check: CheckView, segment: dict[str, str]) -> tuple[float, tuple[str, ...]] | None:
    """The drift share and drifted features of one segment value, if the check judged it."""
    [(column, value)] = segment.items()
    found = check.summary.segments.segment(column, value) if check.summary.segments else None
    if found is None or found.drift_share is None:
        return None
    return found.drift_share, found.drifted_features


def _cohort_decay(
    rule: AlertRuleConfig, service: str, check: CheckView, segment: dict[str, str], mode: str, origin: str
) -> Observation | None:
    """How far the cohort's quality fell below its own baseline, if the check ranked it by ``origin``'s quality."""
    cohort = check.summary.segments.cohort(segment) if check.summary.segments else None
    if cohort is None or cohort.source != origin or rule.metric not in (None, cohort.metric):
        return None
    value = cohort.drop if mode == "absolute" else cohort.drop / abs(cohort.baseline) if cohort.baseline else None
    if value is None:
        return None
    shown = f"{value * 100:.3g}%" if mode == "relative" else f"{value:.3g}"
    sure = "significant" if cohort.significant else "not significant"
    summary = (f"{service} {cohort.label}: {origin} {cohort.metric} fell by {shown} ({mode}; threshold "
               f"{rule.threshold:g}) over {cohort.rows} rows, from {cohort.baseline:.3g}; {sure}")  # fmt: skip
    scope = {"service": service, "metric": cohort.metric, "segment": cohort.label}
    return Observation(scope, value, value > rule.threshold and cohort.significant, summary, _from(check))


def _from(check: CheckView) -> dict[str, Any]:
    """Details that tie an alert to the check that judged it (the dashboard links the report)."""
    return {"check_id": check.id} if check.id is not None else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
