"""Registry versions, aliases and gate decisions; retrain, promote and roll back."""

from __future__ import annotations

import streamlit as st

st.title("Models")
st.info("Model management is not available in this build yet.")
