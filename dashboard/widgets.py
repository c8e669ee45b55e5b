"""How the pages draw charts and tables: stretched to the page, times in the browser's zone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.charts import Chart
from dashboard.frames import localize

TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"


def chart(drawn: Chart) -> None:
    """Draw a Vega-Lite chart across the page width."""
    st.vega_lite_chart(drawn.data, drawn.spec, width="stretch")


def table(frame: pd.DataFrame, times: Sequence[str] = (), *, key: str | None = None, **config: Any) -> None:
    """Draw a table without its index; the ``times`` columns in the browser's zone, to the second."""
    columns = {c: st.column_config.DatetimeColumn(format=TIME_FORMAT) for c in times if c in frame}
    st.dataframe(localize(frame, data.zone(), times), hide_index=True, key=key, column_config={**columns, **config})
