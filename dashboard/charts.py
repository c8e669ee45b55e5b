"""Interactive Altair charts of the dashboard's tables (no Streamlit here; pages draw them).

Times are UTC instants; Vega-Lite shows them in the browser's time zone.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

_TIME = alt.X("time:T", title=None)
_HEIGHT = 220


def latency(frame: pd.DataFrame, bound_ms: float | None = None) -> alt.Chart | alt.LayerChart:
    """Latency p50/p95/p99 over time, one line per percentile and version, with the bound as a rule."""
    lines = (
        alt.Chart(frame)
        .mark_line(point=False)
        .encode(
            _TIME,
            alt.Y("ms:Q", title="latency (ms)"),
            alt.Color("percentile:N", title="percentile"),
            alt.StrokeDash("version:N", title="version"),
            tooltip=["time:T", "version:N", "percentile:N", alt.Tooltip("ms:Q", format=".1f")],
        )
        .properties(height=_HEIGHT)
        .interactive(bind_y=False)
    )
    if not bound_ms:
        return lines
    rule = (
        alt.Chart(pd.DataFrame({"bound": [bound_ms]})).mark_rule(color="black", strokeDash=[4, 4]).encode(y="bound:Q")
    )
    return lines + rule


def throughput(frame: pd.DataFrame, bucket_seconds: int) -> alt.Chart:
    """Requests per minute over time, stacked by model version."""
    data = frame.assign(per_minute=frame["requests"] * 60.0 / bucket_seconds)
    return (
        alt.Chart(data)
        .mark_area(opacity=0.7)
        .encode(
            _TIME,
            alt.Y("per_minute:Q", title="requests / min", stack=True),
            alt.Color("version:N", title="version"),
            tooltip=["time:T", "version:N", "requests:Q", alt.Tooltip("per_minute:Q", format=".1f")],
        )
        .properties(height=_HEIGHT)
        .interactive(bind_y=False)
    )


def errors(frame: pd.DataFrame) -> alt.Chart:
    """Error rate over time, one line per model version."""
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            _TIME,
            alt.Y("error_rate:Q", title="error rate", axis=alt.Axis(format="%")),
            alt.Color("version:N", title="version"),
            tooltip=["time:T", "version:N", "errors:Q", alt.Tooltip("error_rate:Q", format=".2%")],
        )
        .properties(height=_HEIGHT)
        .interactive(bind_y=False)
    )


def resource(frame: pd.DataFrame, metric: str) -> alt.Chart:
    """One agent metric over time, a line per host/process/GPU."""
    data = frame[frame["metric"] == metric].assign(series=lambda f: f["host"] + " " + f["kind"] + " " + f["name"])
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            _TIME,
            alt.Y("value:Q", title=metric),
            alt.Color("series:N", title=None),
            tooltip=["time:T", "host:N", "kind:N", "name:N", alt.Tooltip("value:Q", format=".2f")],
        )
        .properties(height=_HEIGHT)
        .interactive(bind_y=False)
    )


def drift_heatmap(frame: pd.DataFrame) -> alt.Chart:
    """Per-feature drift score of each check: a heatmap, drifted cells outlined."""
    return (
        alt.Chart(frame)
        .mark_rect(stroke="black")
        .encode(
            alt.X("time:T", title=None),
            alt.Y("feature:N", title=None, sort="ascending"),
            alt.Color("score:Q", title="drift score", scale=alt.Scale(scheme="orangered")),
            alt.StrokeWidth("drifted:N", scale=alt.Scale(domain=[False, True], range=[0, 2]), legend=None),
            tooltip=[
                "time:T",
                "feature:N",
                "method:N",
                alt.Tooltip("score:Q", format=".3f"),
                alt.Tooltip("threshold:Q", format=".3f"),
                "drifted:N",
            ],
        )
        .properties(height=max(120, 22 * frame["feature"].nunique()))
    )


def quality(frame: pd.DataFrame, metric: str) -> alt.VConcatChart:
    """Realized and estimated quality over time against the baseline, with label coverage below."""
    top = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            _TIME,
            alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            alt.Color("series:N", title=None),
            alt.StrokeDash("series:N", legend=None),
            tooltip=["time:T", "series:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=_HEIGHT)
    )
    coverage = (
        alt.Chart(frame.drop_duplicates("time"))
        .mark_bar(opacity=0.5)
        .encode(
            _TIME,
            alt.Y("label_coverage:Q", title="label coverage", axis=alt.Axis(format="%")),
            tooltip=["time:T", alt.Tooltip("label_coverage:Q", format=".0%")],
        )
        .properties(height=80)
    )
    return alt.vconcat(top, coverage).resolve_scale(x="shared")
