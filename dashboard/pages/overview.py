"""Every service at a glance, worst first, refreshed every few seconds."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import data, frames, session
from dashboard.views import ServiceHealth

REFRESH_SECONDS = 10
_TIME_COLUMNS = ["champion since", "last check", "last prediction"]
_COLUMNS = {
    "error rate": st.column_config.NumberColumn(format="percent"),
    "p95 ms": st.column_config.NumberColumn(format="%.1f"),
    "bound ms": st.column_config.NumberColumn(format="%.0f"),
    "quality": st.column_config.NumberColumn(format="%.3f"),
    "estimated": st.column_config.NumberColumn(format="%.3f"),
    "baseline": st.column_config.NumberColumn(format="%.3f"),
    **{c: st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm") for c in _TIME_COLUMNS},
}


def first_steps() -> None:
    """What to do when nothing is registered yet."""
    settings = data.settings()
    url = f"http://{settings.server_host}:{settings.server_port}"
    st.info("No services yet. Register one and send its first prediction (token from `mlwatch token create`):")
    st.code(
        f"curl -X POST {url}/v1/services -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n"
        '  -d \'{"name": "credit", "task": "classification", "features": [{"name": "income"}]}\'\n'
        f'curl -X POST {url}/v1/services/credit/predictions -H "Authorization: Bearer $TOKEN" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        '  -d \'{"records": [{"request_id": "r1", "features": {"income": 42000}, "prediction": 1, '
        '"latency_ms": 12.5}]}\'',
        language="bash",
    )


def tiles(rows: list[ServiceHealth]) -> None:
    """Headline numbers across all services."""
    left, middle, right, last = st.columns(4)
    left.metric("Services", len(rows))
    middle.metric("Need attention", sum(r.status in ("critical", "warning") for r in rows))
    right.metric("Open alerts", sum(r.open_alerts for r in rows))
    last.metric("Requests", f"{sum(r.traffic.requests for r in rows):,}")


@st.fragment(run_every=REFRESH_SECONDS)
def live() -> None:
    """The tiles and the grid; reruns on its own so the page stays current."""
    window = session.window()
    rows = data.attempt("read the services", data.overview, window.end - window.start, window.end)
    if rows is None:
        return
    if not rows:
        first_steps()
        return
    tiles(rows)
    table = frames.localize(frames.overview_table(rows), data.zone(), _TIME_COLUMNS)
    st.dataframe(table, hide_index=True, column_config=_COLUMNS, key="overview_table")
    st.caption("Open a service:")
    cols = st.columns(min(len(rows), 6))
    for i, row in enumerate(rows):
        cols[i % len(cols)].page_link(
            "pages/service.py", label=row.name, icon=_ICONS[row.status], query_params={"service": row.name}
        )
    stream_consumers(
        time.time() // REFRESH_SECONDS * REFRESH_SECONDS
    )  # live whatever the range; one cache key per refresh


_CONSUMER_COLUMNS = {
    "records/s": st.column_config.NumberColumn(format="%.0f"),
    "lag p99 s": st.column_config.NumberColumn(format="%g", help="Upper bound of the histogram bucket"),
    "last seen": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
}


def stream_consumers(now: float) -> None:
    """The stream consumers' heartbeats, when any ran within the last hour."""
    table = data.attempt("read the stream consumers", data.stream_consumers, now)
    if table is None or table.empty:
        return
    st.subheader("Stream consumers")
    table = frames.localize(table, data.zone(), ["last seen"])
    st.dataframe(table, hide_index=True, column_config=_CONSUMER_COLUMNS, key="consumers_table")
    st.caption(
        "Each `mlwatch consume` writes its counters every few seconds; a last-seen time that stops moving "
        "is a consumer that stopped. Pending: messages of the durable consumer not delivered yet."
    )


_ICONS = {
    "critical": ":material/error:",
    "warning": ":material/warning:",
    "no data": ":material/hourglass_empty:",
    "ok": ":material/check_circle:",
}

st.title("Services")
live()
