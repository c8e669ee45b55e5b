"""Open and recent alerts; acknowledge, silence, webhook deliveries and a test event."""

from __future__ import annotations

import streamlit as st

from dashboard import session
from dashboard.panels import alerts

who = session.viewer()
st.title("Alerts")
session.show_flash()
if who is not None:
    opened, recent, silenced, hooks = st.tabs(["Open", "Recent", "Silences", "Webhooks"])
    with opened:
        alerts.open_alerts(who)
    with recent:
        alerts.recent_alerts()
    with silenced:
        alerts.silences(who)
    with hooks:
        alerts.webhooks(who)
