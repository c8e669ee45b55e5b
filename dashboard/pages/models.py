"""Registry versions, aliases and gate decisions; retrain, promote and roll back; the shadow beside the champion."""

from __future__ import annotations

import streamlit as st

from dashboard import data, session
from dashboard.panels import models

who = session.viewer()
names = data.attempt("list the services", data.service_names)
st.title("Models")
session.show_flash()
if names is not None and not names:
    st.info("No services registered yet; the Overview page shows how to send the first prediction.")
elif names and who is not None:
    asked = st.query_params.get("service")
    chosen = st.selectbox("Service", names, index=names.index(asked) if asked in names else 0, key="models_service")
    st.query_params["service"] = chosen
    found = models.registry(chosen)
    st.subheader("Actions")
    models.buttons(who, chosen, found)
    st.subheader("Retrain jobs")
    models.jobs(chosen)
    st.subheader("Shadow")
    models.stages(chosen)
