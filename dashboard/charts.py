"""Interactive Vega-Lite charts of the dashboard's tables (no Streamlit here; pages draw them).

Specs are plain Vega-Lite dictionaries rather than Altair objects: Altair validates every
chart against the full schema (about 0.7 s the first time, 0.15 s per chart after), which
was most of a page's render time. Times are UTC instants; Vega-Lite shows them in the
browser's time zone. Drag or scroll on a time chart to pan and zoom its time axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

Spec = dict[str, Any]
HEIGHT = 220
TIME_FORMAT = "%Y-%m-%d %H:%M"
"""How every chart writes a time (tooltips; axes put the date under the time): the tables' format to the minute."""
_ZOOM = [{"name": "zoom", "select": {"type": "interval", "encodings": ["x"]}, "bind": "scales"}]
_TIME_AXIS = {
    "labelExpr": "[timeFormat(datum.value, '%H:%M'), timeFormat(datum.value, '%Y-%m-%d')]",
    "labelOverlap": True,
    "labelAngle": 0,
}
_TIME = {"field": "time", "type": "temporal", "title": None, "axis": _TIME_AXIS}


@dataclass(frozen=True)
class Chart:
    """A table and the Vega-Lite spec that draws it (``st.vega_lite_chart(chart.data, chart.spec)``)."""

    data: pd.DataFrame
    spec: Spec


def _tip(field: str, kind: str = "quantitative", fmt: str | None = None) -> Spec:
    tip: Spec = {"field": field, "type": kind}
    if fmt:
        tip["format"] = fmt
    return tip


_HEAT = {"scheme": "orangered"}
_COVERAGE = {"aggregate": "max", "field": "label_coverage", "type": "quantitative"}
_WHEN = {"field": "time", "type": "temporal", "format": TIME_FORMAT}


def version_order(versions: Any) -> list[str]:
    """Model versions in the order people count them (1, 2, 3, 11, 12), not as text (1, 11, 12, 2, 3);
    names that are not numbers after them, then ``older`` (folded versions) and ``unknown``."""

    def key(version: str) -> tuple[int, int, str]:
        if version in ("older", "unknown"):
            return (2, version == "unknown", version)
        return (0, int(version), version) if version.isascii() and version.isdigit() else (1, 0, version)

    return sorted({str(v) for v in versions}, key=key)


def _versions(frame: pd.DataFrame) -> Spec:
    """A colour per model version, its legend in version order."""
    return {"field": "version", "type": "nominal", "title": "version", "sort": version_order(frame["version"])}


def latency(frame: pd.DataFrame, bound_ms: float | None = None) -> Chart:
    """Latency p50/p95/p99 over time, a line per percentile (dashes per version), the bound as a rule."""
    lines: Spec = {
        "mark": {"type": "line"},
        "params": _ZOOM,
        "encoding": {
            "x": _TIME,
            "y": {"field": "ms", "type": "quantitative", "title": "latency (ms)"},
            "color": {"field": "percentile", "type": "nominal", "title": "percentile"},
            "strokeDash": _versions(frame),
            "tooltip": [_WHEN, _tip("version", "nominal"), _tip("percentile", "nominal"), _tip("ms", fmt=".1f")],
        },
    }
    layers = [lines]
    if bound_ms:
        layers.append(
            {"mark": {"type": "rule", "color": "black", "strokeDash": [4, 4]}, "encoding": {"y": {"datum": bound_ms}}}
        )
    return Chart(frame, {"height": HEIGHT, "layer": layers})


def throughput(frame: pd.DataFrame, bucket_seconds: int) -> Chart:
    """Requests per minute over time, stacked by model version."""
    # Every version gets a row (zero) in every bucket: stacked areas with gaps interpolate across them.
    counts = frame.pivot_table(index="time", columns="version", values="requests", aggfunc="sum", fill_value=0)
    filled = counts.stack().rename("requests").reset_index()
    data = filled.assign(per_minute=filled["requests"] * 60.0 / bucket_seconds)
    # Headroom above the tallest stack: a busiest bucket flush with the frame reads as cut off.
    top = float(data.groupby("time")["per_minute"].sum().max()) * 1.15 if not data.empty else 1.0
    spec: Spec = {
        "height": HEIGHT,
        "mark": {"type": "area", "opacity": 0.7},
        "params": _ZOOM,
        "encoding": {
            "x": _TIME,
            "y": {
                "field": "per_minute",
                "type": "quantitative",
                "title": "requests / min",
                "stack": "zero",
                "scale": {"domain": [0, top], "nice": True},
            },
            "color": _versions(data),
            "tooltip": [_WHEN, _tip("version", "nominal"), _tip("requests"), _tip("per_minute", fmt=".1f")],
        },
    }
    return Chart(data, spec)


def errors(frame: pd.DataFrame) -> Chart:
    """Error rate over time, a line per model version."""
    spec: Spec = {
        "height": HEIGHT,
        "mark": {"type": "line", "point": True},
        "params": _ZOOM,
        "encoding": {
            "x": _TIME,
            # ".2~%": 0.5%, 1.25%, 0% (d3's bare "%" writes six decimals: 0.000000%)
            "y": {"field": "error_rate", "type": "quantitative", "title": "error rate", "axis": {"format": ".2~%"}},
            "color": _versions(frame),
            "tooltip": [_WHEN, _tip("version", "nominal"), _tip("errors"), _tip("error_rate", fmt=".2%")],
        },
    }
    return Chart(frame, spec)


def resource(frame: pd.DataFrame, metric: str) -> Chart:
    """One agent metric over time, a line per host, process or GPU (named by itself: the panel shows one host
    and one kind at a time, so ``host`` and ``kind`` would only repeat in every legend entry)."""
    data = frame[frame["metric"] == metric].assign(series=lambda f: f["name"])
    spec: Spec = {
        "height": HEIGHT,
        "mark": {"type": "line"},
        "params": _ZOOM,
        "encoding": {
            "x": _TIME,
            "y": {"field": "value", "type": "quantitative", "title": metric},
            "color": {"field": "series", "type": "nominal", "title": None},
            "tooltip": [_WHEN, _tip("host", "nominal"), _tip("name", "nominal"), _tip("value", fmt=".2f")],
        },
    }
    return Chart(data, spec)


def drift_heatmap(frame: pd.DataFrame) -> Chart:
    """Each feature's drift in each check as a heatmap, coloured against its own test's threshold.

    A p-value test drifts below its threshold and a distance above it, so raw scores point both
    ways; the colour is ``strength`` (``frames.drift_frame``): 1 at the threshold, on one fixed
    scale for every check, so a page of quiet features stays pale. Drifted cells are outlined.
    A column per check (ordinal), so one check draws one column instead of a zero-width rect.
    """
    spec: Spec = {
        "height": {"step": 22},  # a band per feature (a fixed height squeezed the bands under the axis)
        "mark": {"type": "rect", "stroke": "black"},
        "encoding": {
            "x": {
                "field": "time",
                "type": "ordinal",
                "timeUnit": "yearmonthdatehoursminutes",  # a band per check, written in the viewer's zone
                "title": None,
                "axis": {"format": TIME_FORMAT, "labelAngle": -45},
            },
            "y": {
                "field": "feature",
                "type": "nominal",
                "title": None,
                "sort": "ascending",
                "axis": {"labelOverlap": False, "labelLimit": 240},
            },
            "color": {
                "field": "strength",
                "type": "quantitative",
                "title": "drift (1 = threshold)",
                "scale": {"domain": [0, 1, STRENGTH_CAP], "range": ["#fff7ec", "#fc8d59", "#7f0000"], "clamp": True},
            },
            "strokeWidth": {"condition": {"test": "datum.drifted", "value": 2}, "value": 0},
            "tooltip": [
                {**_WHEN, "title": "window end"},
                _tip("feature", "nominal"),
                _tip("method", "nominal"),
                _tip("score", fmt=".3g"),
                _tip("threshold", fmt=".3g"),
                _tip("drifted", "nominal"),
            ],
        },
    }
    return Chart(frame, spec)


STRENGTH_CAP = 3.0
"""Drift strengths past this many thresholds share the darkest colour."""


QUALITY_SERIES = ["realized", "estimated", "baseline"]


def quality(frame: pd.DataFrame, metric: str) -> Chart:
    """Realized and estimated quality over time against the baseline, label coverage below."""
    top: Spec = {
        "height": HEIGHT,
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": _TIME,
            "y": {"field": "value", "type": "quantitative", "title": metric, "scale": {"zero": False}},
            # One legend for colour and dash: Vega-Lite merges the two only when field and title match;
            # ``legend: None`` on the dash used to drop the merged legend altogether.
            "color": {"field": "series", "type": "nominal", "title": "series", "sort": QUALITY_SERIES},
            "strokeDash": {"field": "series", "type": "nominal", "title": "series", "sort": QUALITY_SERIES},
            "tooltip": [_WHEN, _tip("series", "nominal"), _tip("value", fmt=".3f")],
        },
    }
    coverage: Spec = {
        "height": 80,
        "mark": {"type": "bar", "opacity": 0.5},
        "encoding": {
            "x": _TIME,
            "y": {**_COVERAGE, "title": "label coverage", "axis": {"format": "%"}},
            "tooltip": [_WHEN, {**_COVERAGE, "format": ".0%"}],
        },
    }
    return Chart(frame, {"vconcat": [top, coverage], "resolve": {"scale": {"x": "shared"}}})
