"""Every page renders against a seeded store without an exception and shows what matters."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

Open = Callable[..., AppTest]


def texts(at: AppTest) -> str:
    """Everything the page wrote, as one string."""
    parts = [
        e.value
        for kind in ("title", "markdown", "caption", "info", "warning", "success", "error")
        for e in getattr(at, kind)
    ]
    parts += [m.label + " " + str(m.value) for m in at.metric]
    return "\n".join(str(p) for p in parts)


def test_login_page_is_all_an_anonymous_visitor_sees(open_app: Open) -> None:
    at = open_app(role=None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert "Password or API token" in [t.label for t in at.text_input]


def test_overview_lists_every_service_worst_first(open_app: Open) -> None:
    at = open_app()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["service"]) == ["fraud", "credit", "churn"]
    assert table.iloc[0]["status"] == "critical"
    assert "drift" in table.iloc[0]["drift"]
    assert table.iloc[1]["requests"] == 120


def test_service_page_shows_performance_drift_and_quality(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="fraud")
    assert not at.exception
    shown = texts(at)
    assert "fraud" in [t.value for t in at.title]
    assert "Requests" in shown and "120" in shown
    assert "Dataset drift: 50% of features drifted (income)" in shown
    assert "f1 (realized)" in shown
    assert "bound 20 ms dashed" in shown


def test_service_without_checks_says_how_to_run_one(open_app: Open) -> None:
    at = open_app(page="pages/service.py", service="credit")
    assert not at.exception
    assert "mlwatch check credit" in texts(at)
