"""Latency percentiles, throughput and errors over time, by model version."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, frames, widgets
from dashboard.views import TimeWindow
from monitor.config import CheckSettings


def render(service: str, window: TimeWindow) -> None:
    """Draw the performance section of ``service``."""
    frame = data.attempt("read traffic", data.traffic, service, window.start, window.end, window.bucket_seconds)
    if frame is None:
        return
    if frame.empty:
        st.info(
            "No predictions in this time range. Send some with the SDK (`monitor.sdk`), `mlwatch proxy`, "
            f"or `POST /v1/services/{service}/predictions`; or pick a longer range in the sidebar."
        )
        return
    found = data.attempt("read the service", data.service, service)
    bound = CheckSettings.of(found).latency_bound_ms if found else None
    totals(frame, bound)
    shown = frames.newest_versions(frame)
    older = frame["version"].nunique() - len(shown)
    note = f"; the {older} older version(s) are summed as `older` in throughput and errors" if older > 0 else ""
    st.markdown("**Latency**" + (f" (bound {bound:.0f} ms dashed)" if bound else ""))
    if note:
        st.caption(f"The {len(shown)} most recent model versions are drawn{note}.")
    widgets.chart(charts.latency(frames.latency_long(frame[frame["version"].isin(shown)]), bound))
    folded = frames.fold_versions(frame)
    left, right = st.columns(2)
    with left:
        st.markdown("**Throughput**")
        widgets.chart(charts.throughput(folded, window.bucket_seconds))
    with right:
        st.markdown("**Errors**")
        widgets.chart(charts.errors(folded))


def totals(frame: frames.pd.DataFrame, bound: float | None) -> None:
    """Requests, error rate and the worst bucket's p95 of the range."""
    requests = int(frame["requests"].sum())
    errors = int(frame["errors"].sum())
    worst = frame["p95_ms"].max()
    a, b, c, d = st.columns(4)
    a.metric("Requests", f"{requests:,}")
    b.metric("Errors", f"{errors:,}", f"{errors / requests:.2%}" if requests else None, delta_color="inverse")
    c.metric("Worst p95 (ms)", "-" if frames.pd.isna(worst) else f"{worst:.1f}")
    d.metric("Versions", frame["version"].nunique(), help="model versions that answered in this range")
    if bound and not frames.pd.isna(worst) and worst > bound:
        st.warning(f"p95 latency went over its {bound:.0f} ms bound in this range.")
