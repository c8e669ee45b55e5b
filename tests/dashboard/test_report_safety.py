"""A check's Evidently report holds values any ingest token sent: they stay text, and its scripts stay in a sandbox."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from monitor.drift.check import CheckRunner
from monitor.drift.reference import keep_reference
from monitor.drift.report import REPORT_MARK, check_report
from monitor.records import Feature, LabelRecord, PredictionRecord
from monitor.store import Store

PAYLOAD = "</script><script>top.document.body.dataset.pwn=top.document.cookie</script>"
ROWS = 90


@dataclass(frozen=True)
class Checked:
    """A store holding one check whose window carries ``PAYLOAD`` as a category."""

    store: Store
    check_id: int


def seed_payload(store: Store, now: float) -> int:
    """Register ``credit`` with a categorical ``region``, a clean reference, a labelled window with the payload."""
    service = store.upsert_service(
        "credit", task="classification", features=(Feature("income"), Feature("region", "categorical"))
    )
    labels = [i % 2 for i in range(ROWS)]
    reference = pd.DataFrame({"income": [1000.0 + i for i in range(ROWS)], "region": ["north", "south"] * (ROWS // 2)})
    keep_reference(store, service, reference.assign(prediction=labels, target=labels))
    records = [
        PredictionRecord(
            request_id=f"r{i}",
            ts=now - 3000 + i * 10,
            features={"income": 1000.0 + i, "region": PAYLOAD if i % 3 == 0 else "north"},
            prediction=i % 2,
        )
        for i in range(ROWS)
    ]
    store.add_predictions(service, records)
    store.add_labels(service, [LabelRecord(f"r{i}", (i // 2) % 2, now) for i in range(ROWS)])
    return CheckRunner(store).run(service, now - 3600, now).id


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checked]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('report') / 'report.db'}")
    yield Checked(store, seed_payload(store, time.time()))
    store.close()


def framed_documents(page: str) -> list[str]:
    """The documents of the page's ``srcdoc`` frames, as the browser reads them."""
    return [html.unescape(doc) for doc in re.findall(r'<iframe sandbox="allow-scripts" srcdoc="([^"]*)"', page)]


def test_a_category_that_closes_the_script_stays_a_string_inside_the_report(checked: Checked) -> None:
    page = check_report(checked.store, checked.check_id, regenerate=True).decode()
    drift, quality = framed_documents(page)  # the quality report too, as the window has labels
    for document in (drift, quality):
        assert PAYLOAD not in document
        assert "<script>top.document" not in document
    escaped = PAYLOAD.replace("<", "\\u003c").replace(">", "\\u003e")
    assert escaped in drift  # still there, as data the report shows


def test_every_report_frame_is_sandboxed_without_same_origin(checked: Checked) -> None:
    page = check_report(checked.store, checked.check_id).decode()
    assert page.count("<iframe") == len(framed_documents(page)) == 2
    assert "allow-same-origin" not in page


def test_a_report_kept_before_the_escaping_is_made_again(checked: Checked) -> None:
    checked.store.set_check_report(checked.check_id, f"<html>{PAYLOAD}</html>".encode())
    page = check_report(checked.store, checked.check_id)
    assert REPORT_MARK.encode() in page
    assert PAYLOAD.encode() not in page
    assert checked.store.check_report(checked.check_id) == page  # and kept again
