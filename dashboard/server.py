"""The dashboard as one ASGI app: Streamlit's pages plus the sign-in routes (``dashboard.routes``).

``mlwatch dashboard`` runs ``streamlit run dashboard/server.py``; Streamlit finds ``app``
below and serves it with uvicorn, with the usual ``--server.*`` options.
"""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from dashboard.routes import AuthRoutes
from dashboard.settings import LiveSettings
from dashboard.signins import SignIns, session_key
from monitor.store import Store

SCRIPT = Path(__file__).with_name("app.py")
settings = LiveSettings()


@functools.cache
def signins() -> SignIns:
    """The sign-ins of this process, over its own store connection (opened on the first request)."""
    current = settings()
    return SignIns(Store.open(current.store_url), settings, session_key(current))


app = st.App(SCRIPT, routes=AuthRoutes(signins, settings).routes)
