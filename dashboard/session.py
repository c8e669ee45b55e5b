"""Who is logged in, and the time range every page shows.

Signing in and out are HTTP routes (``dashboard.routes``), which set and delete the
HttpOnly ``mlwatch_session`` cookie. Each run of the script reads that cookie
(``st.context.cookies``, sent with the page's WebSocket) and looks its session up in the
store again, so a log-out, a revoked token or a removed user takes effect on the next click.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import data, routes
from dashboard.access import Viewer
from dashboard.signins import SESSION_COOKIE, SignIns, session_key
from dashboard.views import DEFAULT_RANGE, RANGES, TimeWindow

RANGE_KEY = "time_range"
FLASH_KEY = "flash"
SESSION_KEY = "mlwatch_session_cookie"
"""A session cookie value held in ``st.session_state`` instead of the browser (AppTest sends no
cookies); checked against the store exactly like the cookie. No widget has this key."""


@st.cache_resource(show_spinner=False)
def signins() -> SignIns:
    """The sign-ins of this process, over the dashboard's store."""
    return SignIns(data.store(), data.settings, session_key(data.settings()))


def viewer() -> Viewer | None:
    """The viewer of this browser's live session, if any (looked up again on every run)."""
    sent = st.context.cookies.get(SESSION_COOKIE)
    cookie = sent if isinstance(sent, str) else st.session_state.get(SESSION_KEY)
    if not isinstance(cookie, str) or not cookie:
        return None
    return data.attempt("check the sign-in", _viewer_of, cookie)


def _viewer_of(cookie: str) -> Viewer | None:
    return signins().viewer(cookie)


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
    label = st.session_state.get(RANGE_KEY) or DEFAULT_RANGE
    return TimeWindow.last(RANGES.get(label, RANGES[DEFAULT_RANGE]), now=time.time() if now is None else now)


def sidebar(who: Viewer) -> None:
    """The shared sidebar: time range, who is logged in, and the log-out button."""
    with st.sidebar:
        if RANGE_KEY not in st.session_state:  # opened with the range that fits the traffic so far
            fitting = data.attempt("read traffic", data.default_range, 60 * (time.time() // 60))
            st.session_state[RANGE_KEY] = fitting or DEFAULT_RANGE
        st.selectbox("Time range", list(RANGES), key=RANGE_KEY)
        st.caption(f"Signed in as **{who.name}** ({who.role}) · times in {data.zone()}")
        st.html(routes.logout_form())
