"""The newest predictions of a service, filterable."""

from __future__ import annotations

import streamlit as st

from dashboard import data, frames
from dashboard.views import TimeWindow


def render(service: str, window: TimeWindow) -> None:
    """Draw the recent-predictions table with its filters."""
    limit = st.select_slider("Rows", [100, 500, 1000, 5000], value=500, key=f"pred_limit_{service}")
    frame = data.attempt("read predictions", data.predictions, service, limit, window.start)
    if frame is None:
        return
    if frame.empty:
        st.info(f"No predictions of `{service}` in this time range.")
        return
    a, b, c = st.columns([1, 1, 2])
    status = a.selectbox("Status", ["all", *sorted(frame["status"].unique())], key=f"pred_status_{service}")
    versions = sorted(frame["version"].fillna("unknown").unique())
    version = b.selectbox("Version", ["all", *versions], key=f"pred_version_{service}")
    text = c.text_input("Search request id, prediction or features", key=f"pred_text_{service}")
    shown = frames.filter_predictions(frame, status=status, version=version, text=text)
    st.caption(f"{len(shown)} of the newest {len(frame)} predictions")
    st.dataframe(
        frames.localize(shown, data.zone(), ["time"]),
        hide_index=True,
        column_config={"time": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )
