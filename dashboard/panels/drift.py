"""Per-feature drift over time, the latest verdicts, and the Evidently report of any check.

A report holds values that any ``ingest`` token sent, so it is shown in an
``<iframe sandbox="allow-scripts">``: its scripts run in an opaque origin, and whatever a
value smuggled into them cannot read the dashboard's page or cookies. ``components.html``
alone would not do: its frame allows same-origin.
"""

from __future__ import annotations

import html as markup

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from dashboard import charts, data, frames, widgets
from dashboard.views import CheckHeadline, TimeWindow, number
from monitor.check_summary import CheckSummary, JointDrift
from monitor.records import CheckRecord


def no_checks(service: str) -> None:
    """What to do before the first check."""
    st.info(
        f"No checks of `{service}` in this time range yet. Run one with `mlwatch check {service}` "
        "(the worker also runs them every window once a reference is uploaded with `mlwatch reference upload`)."
    )


def render(service: str, window: TimeWindow) -> None:
    """Draw the data-drift section of ``service``."""
    checks = data.attempt("read checks", data.checks, service, window.start)
    if checks is None:
        return
    if not checks:
        no_checks(service)
        return
    # Drift means what the service's drift_share rule says, so banner, overview and alert agree.
    threshold = data.attempt("read the alert rules", data.drift_threshold, service)
    latest = CheckHeadline.of(checks[0]).judged_by(threshold)
    verdict(latest)
    joint = joint_drift_line(checks[0].summary)
    if joint:
        st.markdown(joint)
    attribution = attribution_line(checks[0].summary)
    if attribution:
        st.markdown(attribution)
        shares = attribution_table(checks[0].summary)
        if shares is not None:
            st.dataframe(shares, hide_index=True)
    scores = frames.drift_frame(checks)
    if not scores.empty:
        st.markdown("**Drift score per feature** (outlined: drifted)")
        widgets.chart(charts.drift_heatmap(scores))
        st.markdown("**Latest verdicts**")
        newest = scores[scores["check"] == checks[0].id].drop(columns=["time", "check", "strength"])
        st.dataframe(newest.sort_values("score", ascending=False), hide_index=True)
    report(checks)


def verdict(latest: CheckHeadline) -> None:
    """A banner with the latest check's dataset verdict, and the bar it was judged against."""
    st_call, text = verdict_banner(latest)
    getattr(st, st_call)(text)


def verdict_banner(latest: CheckHeadline) -> tuple[str, str]:
    """Which banner (``error``, ``warning``, ``success``, ``info``) and its text; the bar is the
    service's ``drift_share`` rule when it has one, as the alert and the overview use."""
    share = f"{latest.drift_share:.0%} of features drifted" if latest.drift_share is not None else ""
    names = ", ".join(latest.drifted_features)
    bar = latest.drift_threshold
    if latest.status == "error":
        return "error", "The latest check failed; see its error in the table below."
    if latest.dataset_drift:
        over = f", over the {bar:.0%} its drift_share alert rule allows" if bar is not None else ""
        return "warning", f"Dataset drift: {share}" + (f" ({names})" if names else "") + over + "."
    if latest.status == "ok":
        under = f", within the {bar:.0%} its drift_share alert rule allows" if bar is not None else ""
        return "success", "No dataset drift in the latest check" + (f": {share}{under}." if share else ".")
    return "info", f"The latest check had no data ({latest.status})."


METHOD_NAMES = {"pca": "PCA reconstruction error", "classifier": "domain classifier AUC"}


def joint_drift_line(summary: CheckSummary) -> str | None:
    """One line with the multivariate methods' verdicts and the drifted text descriptors, or None
    when the check has neither (see ``monitor.check_summary``)."""
    methods = summary.multivariate.methods if summary.multivariate is not None else {}
    parts = [_method_part(name, found) for name, found in methods.items()]
    derived = list(summary.drifted_derived)
    if derived:
        parts.append("derived features drifted: " + ", ".join(_code(name) for name in derived))
    if not parts:
        return None
    return "**Multivariate drift:** " + "; ".join(parts)


def _method_part(name: str, found: JointDrift) -> str:
    state = "drift" if found.drifted else "no drift"
    score, upper = number(found.score), number(found.upper)
    bar = f" ({score:.3g}, bar {upper:.3g})" if score is not None and upper is not None else ""
    return f"{METHOD_NAMES.get(name) or _code(name)}: {state}{bar}"


def attribution_line(summary: CheckSummary) -> str | None:
    """One line with the attribution verdict (``monitor.drift.attribution``), or None when the
    service has it off."""
    found = summary.attribution
    if found is None:
        return None
    if found.skipped:
        return f"**Attribution drift:** not computed: {_code(found.skipped)}"
    state = "drift" if found.drifted else "no drift"
    moved = (
        f"{_code(found.max_shift_feature)}'s share of the importance moved {found.max_shift:.0%}"
        if found.max_shift_feature
        else "no feature's share moved"
    )
    now = ", ".join(_code(name) for name in found.top_current[:3])
    before = ", ".join(_code(name) for name in found.top_reference[:3])
    return (
        f"**Attribution drift:** {state}: {moved} (bar {found.threshold:.0%}); "
        f"the model leans most on {now} now, on {before} in the reference"
    )


def attribution_table(summary: CheckSummary) -> pd.DataFrame | None:
    """Each feature's share of the model's permutation importance, in the reference and now."""
    found = summary.attribution
    if found is None or not found.features:
        return None
    rows = [(f.name, f.reference, f.current, f.current - f.reference) for f in found.features]
    return pd.DataFrame(rows, columns=["feature", "share (reference)", "share (now)", "change"])


def _code(text: str) -> str:
    """``text`` as inline code: Streamlit renders no HTML, and without backticks it cannot leave the span."""
    return "`" + text.replace("`", "'") + "`"


def report(checks: list[CheckRecord]) -> None:
    """The checks table and the Evidently report of the chosen one."""
    st.markdown("**Checks**")
    table = frames.localize(frames.checks_table(checks), data.zone(), ["window end"])
    st.dataframe(table, hide_index=True)
    ids = [c.id for c in checks]
    chosen = st.selectbox("Evidently report of check", ids, key="report_check")
    if st.button("Show report", key="show_report", help="Rendered by Evidently on first request, then kept"):
        with st.spinner("Rendering the Evidently report…"):
            html = data.attempt("make the report", data.check_report, chosen)
        if html is not None:
            components.html(sandboxed(html.decode("utf-8", errors="replace")), height=REPORT_HEIGHT + 20)
            st.download_button(
                "Download report", html, file_name=f"mlwatch-check-{chosen}.html", mime="text/html", key="get_report"
            )


REPORT_HEIGHT = 900


def sandboxed(page: str) -> str:
    """``page`` in a frame whose scripts run but reach nothing outside it (no allow-same-origin)."""
    return (
        f'<iframe sandbox="allow-scripts" title="Evidently report" srcdoc="{markup.escape(page, quote=True)}" '
        f'style="width:100%;height:{REPORT_HEIGHT}px;border:0"></iframe>'
    )
