"""Log in with a configured user and password, or with an API token."""

from __future__ import annotations

import streamlit as st

from dashboard import session
from monitor.errors import AuthError, MlwatchError

st.title("mlwatch")
st.caption("Sign in with your user name and password, or leave the user name empty and paste an API token.")

with st.form("login"):
    username = st.text_input("User name", key="login_username")
    secret = st.text_input("Password or API token", type="password", key="login_secret")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    try:
        session.log_in(username, secret)
    except AuthError as exc:
        st.error(f"Not signed in: {exc}")
    except MlwatchError as exc:
        st.error(f"Could not check the login: {exc}")
    else:
        st.rerun()

st.info(
    "No login yet? Create a token with `mlwatch token create --role viewer` (or `operator` to use the buttons), "
    "or add a user to `mlwatch.yaml` with a hash from `mlwatch user hash`."
)
