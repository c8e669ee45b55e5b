"""One service in depth: performance, resources, drift, quality and recent predictions."""

from __future__ import annotations

import streamlit as st

from dashboard import data, session
from dashboard.panels import drift, performance, predictions, quality, resources

names = data.attempt("list the services", data.service_names)
if names is not None and not names:
    st.title("Service")
    st.info("No services registered yet; the Overview page shows how to send the first prediction.")
elif names:
    asked = st.query_params.get("service")
    chosen = st.selectbox("Service", names, index=names.index(asked) if asked in names else 0, key="service_choice")
    st.query_params["service"] = chosen
    st.title(chosen)
    window = session.window()
    tabs = st.tabs(["Performance", "Resources", "Data drift", "Quality", "Predictions"])
    for tab, panel in zip(tabs, (performance, resources, drift, quality, predictions), strict=True):
        with tab:
            panel.render(chosen, window)
