"""Who is logged in, and the time range every page shows (kept in ``st.session_state``)."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import access, data
from dashboard.access import Viewer
from dashboard.views import RANGES, TimeWindow

VIEWER_KEY = "viewer"
RANGE_KEY = "time_range"
DEFAULT_RANGE = "Last 24 hours"
FLASH_KEY = "flash"


def viewer() -> Viewer | None:
    """The logged-in viewer of this browser session, if any."""
    found = st.session_state.get(VIEWER_KEY)
    return found if isinstance(found, Viewer) else None


def log_in(username: str, secret: str) -> Viewer:
    """Check a username and password (or an API token) and remember the viewer; AuthError if refused."""
    who = access.authenticate(data.settings(), data.store(), username, secret)
    st.session_state[VIEWER_KEY] = who
    return who


def log_out() -> None:
    """Forget the viewer of this session."""
    st.session_state.pop(VIEWER_KEY, None)


def flash(message: str) -> None:
    """Keep a success message to show after the rerun an action triggers."""
    st.session_state[FLASH_KEY] = message


def show_flash() -> None:
    """Show (once) the message an action left."""
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message, icon=":material/check:")


def window(now: float | None = None) -> TimeWindow:
    """The selected time range, ending now."""
    label = st.session_state.get(RANGE_KEY, DEFAULT_RANGE)
    return TimeWindow.last(RANGES.get(label, RANGES[DEFAULT_RANGE]), now=time.time() if now is None else now)


def sidebar(who: Viewer) -> None:
    """The shared sidebar: time range, who is logged in, and the log-out button."""
    with st.sidebar:
        st.selectbox("Time range", list(RANGES), index=list(RANGES).index(DEFAULT_RANGE), key=RANGE_KEY)
        st.caption(f"Signed in as **{who.name}** ({who.role}) · times in {data.zone()}")
        if st.button("Log out", icon=":material/logout:"):
            log_out()
            st.rerun()
