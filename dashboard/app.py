"""The dashboard's router: ``mlwatch dashboard`` serves it through ``dashboard/server.py`` (with the sign-in routes).

Only routing lives here: a login page until someone signs in, then the pages.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import session

# A shipped file, not a ":material/...:" or emoji icon, which the browser fetches from an outside
# host (and air-gapped sites cannot reach).
FAVICON = str(Path(__file__).resolve().parent / "assets" / "favicon.png")
st.set_page_config(page_title="mlwatch", page_icon=FAVICON, layout="wide")

who = session.viewer()
if who is None:
    # Same (root) URL as the overview, so that signing in lands on the overview.
    pages = [st.Page("pages/login.py", title="Log in", icon=":material/login:", url_path="", default=True)]
else:
    session.sidebar(who)
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="", default=True),
        st.Page("pages/service.py", title="Service", icon=":material/insights:", url_path="service"),
        st.Page("pages/alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"),
        st.Page("pages/models.py", title="Models", icon=":material/model_training:", url_path="models"),
    ]
st.navigation(pages).run()
