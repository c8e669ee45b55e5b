"""Who is logged in, and the time range every page shows (kept in ``st.session_state``).

A log-in also leaves a signed cookie (``access.session_cookie``), so reloading the page or
opening another tab does not ask again; the key that signs it lives as long as the dashboard
process, so restarting the dashboard signs everyone out.
"""

from __future__ import annotations

import secrets
import time

import streamlit as st

from dashboard import access, data
from dashboard.access import Viewer
from dashboard.views import RANGES, TimeWindow

VIEWER_KEY = "viewer"
RANGE_KEY = "time_range"
DEFAULT_RANGE = "Last 24 hours"
FLASH_KEY = "flash"
COOKIE_KEY = "session_cookie"  # a cookie value to send the browser, "" to delete it
LOGGED_OUT_KEY = "logged_out"  # this session logged out: ignore the cookie it started with


@st.cache_resource
def _session_key() -> bytes:
    return secrets.token_bytes(32)


def viewer() -> Viewer | None:
    """The logged-in viewer of this browser session, if any (restored from its cookie after a reload)."""
    found = st.session_state.get(VIEWER_KEY)
    if isinstance(found, Viewer):
        return found
    if st.session_state.get(LOGGED_OUT_KEY):
        return None
    restored = access.viewer_from_cookie(st.context.cookies.get(access.SESSION_COOKIE), _session_key(), time.time())
    if restored is not None:
        st.session_state[VIEWER_KEY] = restored
    return restored


def log_in(username: str, secret: str) -> Viewer:
    """Check a username and password (or an API token) and remember the viewer; AuthError if refused."""
    who = access.authenticate(data.settings(), data.store(), username, secret)
    st.session_state[VIEWER_KEY] = who
    st.session_state.pop(LOGGED_OUT_KEY, None)
    st.session_state[COOKIE_KEY] = access.session_cookie(who, _session_key(), time.time())
    return who


def log_out() -> None:
    """Forget the viewer of this session, and of the browser's cookie."""
    st.session_state.pop(VIEWER_KEY, None)
    st.session_state[LOGGED_OUT_KEY] = True
    st.session_state[COOKIE_KEY] = ""


def send_cookie() -> None:
    """Set (or delete) the session cookie in the browser, once, after a log-in or log-out."""
    value = st.session_state.pop(COOKIE_KEY, None)
    if value is None:
        return
    lifetime = access.SESSION_SECONDS if value else 0
    # The value is base64url and "." only: nothing in it can end the string or the script.
    cookie = f"{access.SESSION_COOKIE}={value}; Path=/; Max-Age={lifetime}; SameSite=Strict"
    st.html(f"<script>document.cookie = {cookie!r};</script>", unsafe_allow_javascript=True)


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
