"""Open and recent alerts; acknowledge, silence, webhook deliveries and a test event."""

from __future__ import annotations

import streamlit as st

st.title("Alerts")
st.info("Alerts are not available in this build yet.")
