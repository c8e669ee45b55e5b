"""Host, process and GPU metrics sent by ``mlwatch agent``."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, widgets
from dashboard.views import TimeWindow

_PREFERRED = ("cpu_percent", "memory_percent", "gpu_utilization", "gpu_memory_used_mb", "utilization", "memory_used")


def render(service: str, window: TimeWindow) -> None:
    """Draw the resources section (the agent reports per host; pick one)."""
    frame = data.attempt("read agent samples", data.resources, window.start, window.end, window.bucket_seconds)
    if frame is None:
        return
    if frame.empty:
        st.info(
            "No host samples in this time range. Run `mlwatch agent` on the machine that serves "
            f"`{service}` (add `--pid` for its process); it reports CPU, memory and GPU use."
        )
        return
    hosts = sorted(frame["host"].unique())
    host = st.selectbox("Host", hosts, key=f"host_{service}") if len(hosts) > 1 else hosts[0]
    mine = frame[frame["host"] == host]
    for kind in ("host", "process", "gpu"):
        part = mine[mine["kind"] == kind]
        if part.empty:
            continue
        st.markdown(f"**{kind.upper() if kind == 'gpu' else kind.title()}**")
        metrics = ordered(part["metric"].unique())
        chosen = st.multiselect("Metrics", metrics, default=metrics[:2], key=f"metrics_{kind}_{service}")
        cols = st.columns(2)
        for i, metric in enumerate(chosen):
            with cols[i % 2]:
                widgets.chart(charts.resource(part, metric))


def ordered(metrics: object) -> list[str]:
    """The usual metrics first (CPU, memory, GPU utilization), then the rest by name."""
    names = sorted(str(m) for m in metrics)  # type: ignore[attr-defined]
    return sorted(names, key=lambda m: (_PREFERRED.index(m) if m in _PREFERRED else len(_PREFERRED), m))
