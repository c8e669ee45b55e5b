"""Realized and estimated model quality over time, with label coverage and the baseline."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, frames, widgets
from dashboard.panels.drift import no_checks
from dashboard.views import CheckHeadline, TimeWindow


def render(service: str, window: TimeWindow) -> None:
    """Draw the quality section of ``service``."""
    checks = data.attempt("read checks", data.checks, service, window.start)
    if checks is None:
        return
    if not checks:
        no_checks(service)
        return
    metric = data.settings().retrain_policy(service).gate.metric
    latest = CheckHeadline.of(checks[0], metric)
    if latest.metric is None:
        st.info(
            "No quality measured yet: it needs ground truth (send labels to "
            f"`POST /v1/services/{service}/labels`) or a classifier's probabilities for the estimate."
        )
        return
    headline(latest, checks[0].model_version)
    frame = frames.quality_frame([c for c in checks if c.status == "ok"], latest.metric)
    if not frame.empty:
        widgets.chart(charts.quality(frame, latest.metric))


def headline(latest: CheckHeadline, version: str | None = None) -> None:
    """The latest realized and estimated quality against the baseline of the model ``version`` it judged."""
    a, b, c = st.columns(3)
    delta = None
    if latest.quality is not None and latest.baseline is not None:
        delta = f"{latest.quality - latest.baseline:+.3f} vs baseline"
    a.metric(f"{latest.metric} (realized)", _fmt(latest.quality), delta)
    b.metric(f"{latest.metric} (estimated)", _fmt(latest.estimated_quality))
    c.metric("Label coverage", "-" if latest.label_coverage is None else f"{latest.label_coverage:.0%}")
    st.caption(baseline_caption(latest.metric, latest.baseline, version))


def baseline_caption(metric: str | None, baseline: float | None, version: str | None) -> str:
    """Where the baseline comes from: each model version has its own (after a retrain, the new
    version's held-out score on its training data), so the caption names the version."""
    if baseline is None:
        return f"No baseline {metric} yet for model version {version or 'unknown'}."
    whose = f"model version {version}" if version else "the serving model"
    return f"Baseline {metric}: {_fmt(baseline)}, the quality {whose} is judged against."


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
