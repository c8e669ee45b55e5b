"""Segments of the latest check: drift, data quality and quality per segment value, and the worst cohorts.

Segment values are whatever predictions sent, so they are shown only in ``st.dataframe``
cells (data, never markup) and in Streamlit's markdown as inline code (``drift._code``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.panels.drift import _code, no_checks
from dashboard.views import TimeWindow
from monitor.check_summary import SegmentsSummary

WORST = 10
"""Cohorts shown, worst first."""


def render(service: str, window: TimeWindow) -> None:
    """Draw the segments section of ``service``."""
    checks = data.attempt("read checks", data.checks, service, window.start)
    if checks is None:
        return
    if not checks:
        no_checks(service)
        return
    found = checks[0].summary.segments
    if found is None:
        st.info(
            f"`{service}` has no segments. Set `segments` (categorical features, such as `[region, channel]`) on "
            "the service in mlwatch.yaml or `POST /v1/services` to judge drift and quality per segment."
        )
        return
    worst_cohorts(found)
    st.markdown("**Segments** (the latest check)")
    table = segment_table(found)
    if table.empty:
        st.info("No segment value had enough sampled rows in the latest check (`segment_min_rows`).")
    else:
        st.dataframe(table, hide_index=True)
    for column, why in found.skipped.items():
        st.caption(f"{_code(column)}: {why}")


def worst_cohorts(found: SegmentsSummary) -> None:
    """The cohorts whose quality fell most against their own baseline, and a line on the worst."""
    table = cohort_table(found)
    if table.empty:
        st.caption("No cohort has a baseline yet: the reference needs labels, predictions and the segment "
                   "columns, or a cohort's first window with enough labelled rows becomes its baseline.")  # fmt: skip
        return
    worst = found.cohorts[0]
    if worst.significant:
        st.warning(f"Worst cohort: {_code(worst.label)}, {found.metric} {worst.quality:.3f} against its own "
                   f"{worst.baseline:.3f} ({worst.rows} rows).")  # fmt: skip
    else:
        st.success("No cohort's quality fell significantly below its own baseline.")
    st.markdown("**Worst cohorts** (ranked by the low end of the drop's 95% interval)")
    st.dataframe(table, hide_index=True)


def segment_table(found: SegmentsSummary) -> pd.DataFrame:
    """One row per judged segment value."""
    rows = [
        {
            "segment": s.column,
            "value": s.value,
            "rows": s.rows,
            "drift share": s.drift_share,
            "drifted features": ", ".join(s.drifted_features),
            "compared with": "its reference rows" if s.reference == "segment" else "the whole reference",
            "missing": s.missing_share,
            "out of range": s.out_of_range_share,
            found.metric or "quality": s.quality,
            "quality from": s.quality_source or "",
        }
        for s in found.segments
    ]
    return pd.DataFrame(rows)


def cohort_table(found: SegmentsSummary, limit: int = WORST) -> pd.DataFrame:
    """The first ``limit`` cohorts as ranked."""
    rows = [
        {
            "cohort": c.label,
            "rows": c.rows,
            c.metric: c.quality,
            "baseline": c.baseline,
            "drop": c.drop,
            "drop at least": c.lower,
            "significant": c.significant,
            "baseline from": "reference" if c.baseline_source == "reference" else "first labelled window",
            "within": c.explained_by or "",
        }
        for c in found.cohorts[:limit]
    ]
    return pd.DataFrame(rows)
