"""One service in depth: performance, resources, drift, quality, segments and recent predictions."""

from __future__ import annotations

import streamlit as st

from dashboard import data, session
from dashboard.panels import drift, performance, predictions, quality, resources, segments

SECTIONS = {
    "Performance": performance,
    "Resources": resources,
    "Data drift": drift,
    "Quality": quality,
    "Segments": segments,
    "Predictions": predictions,
}

names = data.attempt("list the services", data.service_names)
if names is not None and not names:
    st.title("Service")
    st.info("No services registered yet; the Overview page shows how to send the first prediction.")
elif names:
    asked = st.query_params.get("service")
    chosen = st.selectbox("Service", names, index=names.index(asked) if asked in names else 0, key="service_choice")
    st.query_params["service"] = chosen
    st.title(chosen)
    st.page_link("pages/models.py", label="Models, retrain, promote, rollback", query_params={"service": chosen})
    window = session.window()
    # Only the open section runs (lazy tabs), and ?section=... links to it.
    tabs = st.tabs(list(SECTIONS), key="section", bind="query-params")
    for tab, panel in zip(tabs, SECTIONS.values(), strict=True):
        if tab.open:
            with tab:
                panel.render(chosen, window)
