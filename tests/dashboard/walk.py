"""Walk every page of the dashboard over a real store, signed in with a token, on the default range.

Used by the demo test on the demo's own data. On each page and section it reads what Streamlit
was asked to draw (AppTest): every chart's Vega-Lite spec and data. A chart is *empty* when its
data has no row or a single time; a multi-series chart (a colour or dash field with more than
one value) must keep its legend. The drift banner, the overview's problems and the service's
``drift_share`` rule must agree about the latest check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SECTIONS = ("Performance", "Resources", "Data drift", "Quality", "Predictions")
PAGES = ("pages/alerts.py", "pages/models.py")


@dataclass
class Walk:
    """What the walk saw: charts per place, and each problem found."""

    charts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    banner: tuple[str, str] | None = None
    overview_problems: str = ""


def sign_in(token: str) -> str:
    """A dashboard session cookie for an API token (as the login form makes one)."""
    from dashboard.access import authenticate
    from dashboard.signins import SignIns, session_key
    from monitor.settings import load_settings
    from monitor.store import Store

    settings = load_settings()
    store = Store.open(settings.store_url)
    try:
        viewer = authenticate(settings, store, "", token)
        return SignIns(store, lambda: settings, session_key(settings)).sign_in(viewer)
    finally:
        store.close()


def open_page(cookie: str, page: str | None = None, **query: str) -> AppTest:
    """The app, signed in with ``cookie``, on ``page`` with ``query`` parameters."""
    from dashboard.session import SESSION_KEY

    at = AppTest.from_file(APP, default_timeout=120)
    at.context["timezone"] = "UTC"
    at.session_state[SESSION_KEY] = cookie
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def chart_specs(at: AppTest) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """Each Vega-Lite chart the run drew, as its spec and its data."""
    drawn = []
    for element in at.get("vega_lite_chart"):
        proto = element.proto
        data = pa.ipc.open_stream(proto.data.data).read_pandas() if proto.data.data else pd.DataFrame()
        drawn.append((json.loads(proto.spec), data))
    return drawn


def chart_problems(where: str, spec: dict[str, Any], data: pd.DataFrame) -> list[str]:
    """Why a chart is empty or has lost a legend it needs; nothing when it is fine."""
    layers = [spec, *spec.get("layer", []), *spec.get("vconcat", [])]
    encodings = [layer["encoding"] for layer in layers if "encoding" in layer]
    if data.empty:
        return [f"{where}: a chart with no data"]
    found = []
    for encoding in encodings:
        x = encoding.get("x", {})
        if x.get("type") == "temporal" and x.get("field") in data and data[x["field"]].nunique() < 2:
            found.append(f"{where}: a time chart with a single time")
        for name in {encoding[c]["field"] for c in ("color", "strokeDash") if c in encoding}:
            channels = [encoding[c] for c in ("color", "strokeDash") if encoding.get(c, {}).get("field") == name]
            if name in data and data[name].nunique() > 1 and all(c.get("legend", {}) is None for c in channels):
                found.append(f"{where}: {data[name].nunique()} {name} series without a legend")
    return found


def walk(cookie: str, service: str) -> Walk:
    """Every page and section of ``service`` on the default range, checked as the module says."""
    seen = Walk()
    overview = open_page(cookie)
    seen.overview_problems = str(overview.dataframe[0].value.set_index("service").loc[service, "problems"])
    places = [("overview", overview)]
    places += [(s, open_page(cookie, "pages/service.py", service=service, section=s)) for s in SECTIONS]
    places += [(page, open_page(cookie, page, service=service)) for page in PAGES]
    for where, at in places:
        seen.problems += [f"{where}: exception {e.value}" for e in at.exception]
        drawn = chart_specs(at)
        seen.charts[where] = len(drawn)
        for spec, data in drawn:
            seen.problems += chart_problems(where, spec, data)
        if where == "Data drift":
            seen.banner = next(((kind, el.value) for kind in BANNERS for el in getattr(at, kind)), None)
    return seen


BANNERS = ("warning", "success", "error", "info")
"""The kinds of banner ``dashboard.panels.drift.verdict_banner`` writes, in the order they are looked for."""
