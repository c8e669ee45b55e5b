"""Log in with a configured user and password, or with an API token.

The form posts to ``/auth/login`` (``dashboard.routes``), which sets the session cookie in its
answer: a cookie set by the server can be HttpOnly, one set from a script cannot.
"""

from __future__ import annotations

import streamlit as st

from dashboard import routes

st.title("mlwatch")
st.caption("Sign in with your user name and password, or leave the user name empty and paste an API token.")
st.html(routes.login_form())
st.info(
    "No login yet? Create a token with `mlwatch token create --role viewer` (or `operator` to use the buttons), "
    "or add a user to `mlwatch.yaml` with a hash from `mlwatch user hash`."
)
