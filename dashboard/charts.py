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
_ZOOM = [{"name": "zoom", "select": {"type": "interval", "encodings": ["x"]}, "bind": "scales"}]
_TIME = {"field": "time", "type": "temporal", "title": None}


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
_WHEN = {"field": "time", "type": "temporal", "format": "%Y-%m-%d %H:%M"}


def latency(frame: pd.DataFrame, bound_ms: float | None = None) -> Chart:
    """Latency p50/p95/p99 over time, a line per percentile (dashes per version), the bound as a rule."""
    lines: Spec = {
        "mark": {"type": "line"},
        "params": _ZOOM,
        "encoding": {
            "x": _TIME,
            "y": {"field": "ms", "type": "quantitative", "title": "latency (ms)"},
            "color": {"field": "percentile", "type": "nominal", "title": "percentile"},
            "strokeDash": {"field": "version", "type": "nominal", "title": "version"},
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
    data = frame.assign(per_minute=frame["requests"] * 60.0 / bucket_seconds)
    spec: Spec = {
        "height": HEIGHT,
        "mark": {"type": "area", "opacity": 0.7},
        "params": _ZOOM,
        "encoding": {
            "x": _TIME,
            "y": {"field": "per_minute", "type": "quantitative", "title": "requests / min", "stack": True},
            "color": {"field": "version", "type": "nominal", "title": "version"},
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
            "y": {"field": "error_rate", "type": "quantitative", "title": "error rate", "axis": {"format": "%"}},
            "color": {"field": "version", "type": "nominal", "title": "version"},
            "tooltip": [_WHEN, _tip("version", "nominal"), _tip("errors"), _tip("error_rate", fmt=".2%")],
        },
    }
    return Chart(frame, spec)


def resource(frame: pd.DataFrame, metric: str) -> Chart:
    """One agent metric over time, a line per host/process/GPU."""
    data = frame[frame["metric"] == metric].assign(series=lambda f: f["host"] + " " + f["kind"] + " " + f["name"])
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
    """Per-feature drift score of each check as a heatmap; drifted cells outlined."""
    spec: Spec = {
        "height": max(120, 22 * int(frame["feature"].nunique())),
        "mark": {"type": "rect", "stroke": "black"},
        "encoding": {
            "x": {"field": "time", "type": "temporal", "title": None},
            "y": {"field": "feature", "type": "nominal", "title": None, "sort": "ascending"},
            "color": {
                "field": "score",
                "type": "quantitative",
                "title": "drift score",
                "scale": {"scheme": "orangered"},
            },
            "strokeWidth": {"condition": {"test": "datum.drifted", "value": 2}, "value": 0},
            "tooltip": [
                _WHEN,
                _tip("feature", "nominal"),
                _tip("method", "nominal"),
                _tip("score", fmt=".3f"),
                _tip("threshold", fmt=".3f"),
                _tip("drifted", "nominal"),
            ],
        },
    }
    return Chart(frame, spec)


def quality(frame: pd.DataFrame, metric: str) -> Chart:
    """Realized and estimated quality over time against the baseline, label coverage below."""
    top: Spec = {
        "height": HEIGHT,
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": _TIME,
            "y": {"field": "value", "type": "quantitative", "title": metric, "scale": {"zero": False}},
            "color": {"field": "series", "type": "nominal", "title": None},
            "strokeDash": {"field": "series", "type": "nominal", "legend": None},
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
