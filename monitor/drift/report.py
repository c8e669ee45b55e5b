"""The full Evidently HTML report of a check, produced on demand and kept with the check.

Two Evidently reports, on one page:

- drift: ``DataDriftPreset`` (with the service's per-feature method and threshold
  overrides) over the window sample and the reference, with prediction and target columns;
- quality, once the window has labels and the reference has predictions:
  ``ClassificationPreset`` or ``RegressionPreset`` on the labelled rows of both.

Both sides are bounded by the service's ``sample_size``, so a report costs the same on
any window.

User-supplied values (feature values, category names) reach the page in two places, and
each is escaped for its context: Evidently embeds its data as JavaScript inside a
``<script>``, where ``<``, ``>`` and ``&`` become ``\u003c``-style escapes (``_inert``), so
no value can end the script or open a comment; and each report sits in the ``srcdoc`` of
an ``<iframe sandbox="allow-scripts">``, HTML-escaped for the attribute, so its scripts run
in an opaque origin and cannot reach the page (or the dashboard) around it.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

from monitor.config import CheckSettings
from monitor.drift.reference import PREDICTION, feature_types, target_column, value_keys
from monitor.drift.window import window_sample
from monitor.errors import Conflict
from monitor.records import CheckRecord, Service
from monitor.store import Store

REPORT_MARK = '<meta name="generator" content="mlwatch report 2">'
"""In every page ``render`` makes; a kept page without it predates the escaping and is made again."""
_DATA_LINE = re.compile(r"^(\s*var (?:additional_graphs_)?metric_[0-9a-f]{32} = )(.*);$", re.MULTILINE)
# json.dumps leaves these as they are; inside a <script> they can end it ("</script>") or
# open a comment ("<!--"). Inside a JSON string the escape stands for the same character.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def check_report(store: Store, check_id: int, *, regenerate: bool = False) -> bytes:
    """The HTML report of check ``check_id``: the kept one, else rendered now and kept."""
    kept = None if regenerate else store.check_report(check_id)
    if kept is not None and REPORT_MARK.encode() in kept:
        return kept
    check = store.get_check(check_id)
    if check.status == "no_data":
        raise Conflict(f"check {check_id} found no predictions in its window; there is nothing to report")
    service = next(s for s in store.list_services() if s.id == check.service_id)
    page = render(store, service, check)
    store.set_check_report(check_id, page)
    return page


def render(store: Store, service: Service, check: CheckRecord) -> bytes:
    """Render the Evidently reports of ``check`` (NotFound when the service has no reference)."""
    limit = CheckSettings.of(service).sample_size
    reference, _ = store.get_reference(service, check.model_version)
    reference = reference if len(reference) <= limit else reference.sample(limit, random_state=0)
    current = _current_frame(store, service, check, limit)
    sections = [("Data drift", _drift_html(service, reference, current))]
    quality = _quality_html(service, reference, current)
    if quality is not None:
        sections.append(("Model quality (labelled rows)", quality))
    return _page(service, check, sections).encode()


def _current_frame(store: Store, service: Service, check: CheckRecord, limit: int) -> pd.DataFrame:
    window = window_sample(store.sample_columns(service, check.window_start, check.window_end, limit))
    frame = window.features.copy()
    frame[PREDICTION] = window.predictions.to_numpy()
    if window.has_label.any():
        frame[target_column(service)] = window.labels.to_numpy()
    return frame


def _drift_html(service: Service, reference: pd.DataFrame, current: pd.DataFrame) -> str:
    from evidently import DataDefinition

    kinds, reference, current = _comparable(service, reference, current)
    columns = list(kinds)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numerical"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
        text_columns=[c for c in columns if kinds[c] == "text"],
    )
    text = [c for c in columns if kinds[c] == "text"]
    try:
        return _drift_report(service, reference, current, columns, definition)
    except ValueError as error:
        # Evidently's text drift fits a TF-IDF vocabulary on the text columns, and raises
        # ValueError ("empty vocabulary", "max_df corresponds to < documents than min_df")
        # on a few short or stop-word values: report the other columns, naming those left out.
        if not text:
            raise
        rest = [c for c in columns if c not in text]
        if not rest:
            raise Conflict(
                f"the window and the reference of service {service.name!r} share only text columns "
                f"({', '.join(text)}) and Evidently cannot compare their values ({error}); there is nothing to report"
            ) from error
        definition = DataDefinition(
            numerical_columns=[c for c in rest if kinds[c] == "numerical"],
            categorical_columns=[c for c in rest if kinds[c] == "categorical"],
        )
        page = _drift_report(service, reference, current, rest, definition)
        note = f"text columns left out: {', '.join(text)} (Evidently cannot compare their values: {error})"
        return f"<p>{html.escape(note)}</p>{page}"


def _drift_report(
    service: Service, reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], definition: Any
) -> str:
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset(columns=columns, **_overrides(service, columns))
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    return _inert(str(snapshot.get_html_str(as_iframe=False)))


def _comparable(
    service: Service, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[dict[str, str], pd.DataFrame, pd.DataFrame]:
    """The columns both sides have values in, by type, and both sides with numerical columns as numbers.

    Evidently's preset fails on what a check skips: no common column divides by zero, and
    a numerical column with no value left (all missing) is an object column it cannot test.
    Conflict when nothing is left to compare.
    """
    outcome = _outcome_kind(service)
    kinds = {**feature_types(service, reference), PREDICTION: outcome, target_column(service): outcome}
    shared = [c for c in kinds if c in reference.columns and c in current.columns]
    sides = [_typed(frame[shared], kinds) for frame in (reference, current)]
    kept = {c: kinds[c] for c in shared if all(side[c].notna().any() for side in sides)}
    if not kept:
        raise Conflict(
            f"the window and the reference of service {service.name!r} have no column with values on both sides "
            f"(reference: {_names(reference)}; window: {_names(current)}); there is nothing to report. "
            "Upload a reference whose columns are the features the service sends"
        )
    return kept, sides[0], sides[1]


def _typed(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Numerical columns as floats (booleans too: Evidently cannot subtract numpy booleans), the
    other columns' values as text keys (a list or an object value is unhashable to Evidently)."""
    typed = {
        c: pd.to_numeric(frame[c], errors="coerce").astype("float64") if kinds[c] == "numerical" else _keys(frame[c])
        for c in frame.columns
    }
    return frame.assign(**typed) if typed else frame


def _keys(values: pd.Series) -> pd.Series:
    present = values.notna()
    keyed = values.astype(object).where(present, None)
    if present.any():
        keyed[present] = value_keys(values[present])
    return keyed


def _names(frame: pd.DataFrame, shown: int = 20) -> str:
    names = [str(c) for c in frame.columns[:shown]]
    return ", ".join(names) + (", ..." if len(frame.columns) > shown else "") if names else "none"


def _quality_html(service: Service, reference: pd.DataFrame, current: pd.DataFrame) -> str | None:
    from evidently import DataDefinition, Dataset, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    target = target_column(service)
    sides = [_labelled(frame, target, service.task) for frame in (current, reference)]
    if any(side is None or side.empty for side in sides):
        return None
    if service.task == "classification":
        definition = DataDefinition(
            classification=[_classification(target, sides)], categorical_columns=[target, PREDICTION]
        )
        preset: Any = ClassificationPreset()
    else:
        definition = DataDefinition(
            regression=[Regression(target=target, prediction=PREDICTION)], numerical_columns=[target, PREDICTION]
        )
        preset = RegressionPreset()
    current_set, reference_set = (Dataset.from_pandas(side, data_definition=definition) for side in sides)
    return _inert(str(Report([preset]).run(current_set, reference_set).get_html_str(as_iframe=False)))


def _inert(page: str) -> str:
    """Evidently's page with the data it embeds unable to end its ``<script>`` or open a comment.

    Evidently writes that data as two lines, ``var metric_<id> = <JSON>;`` and
    ``var additional_graphs_metric_<id> = <JSON>;``; JSON escapes every newline, so each value
    is one line. Should another Evidently write it otherwise, this fails rather than pass the
    values through raw.
    """
    safe, found = _DATA_LINE.subn(lambda m: f"{m.group(1)}{m.group(2).translate(_SCRIPT_SAFE)};", page)
    if found != 2:
        raise RuntimeError(
            "Evidently's report embeds its data in a way mlwatch does not know "
            f"(expected 2 data lines, found {found}); install the evidently pinned in constraints.txt"
        )
    return safe


def _classification(target: str, sides: list[Any]) -> Any:
    from evidently import BinaryClassification, MulticlassClassification

    classes = set().union(*(set(side[target]) | set(side[PREDICTION]) for side in sides))
    if classes <= {"0", "1"}:
        return BinaryClassification(target=target, prediction_labels=PREDICTION, pos_label="1")
    return MulticlassClassification(target=target, prediction_labels=PREDICTION)


def _labelled(frame: pd.DataFrame, target: str, task: str) -> pd.DataFrame | None:
    """Rows with both a label and a prediction; classes as comparable text keys."""
    if target not in frame.columns or PREDICTION not in frame.columns:
        return None
    rows = frame.loc[frame[target].notna() & frame[PREDICTION].notna(), [target, PREDICTION]]
    if task == "classification":
        return rows.apply(value_keys).reset_index(drop=True)
    return rows.apply(pd.to_numeric, errors="coerce").dropna().reset_index(drop=True)


def _page(service: Service, check: CheckRecord, sections: list[tuple[str, str]]) -> str:
    """One page holding each Evidently report in a sandboxed frame of its own (their scripts stay apart)."""
    title = f"mlwatch check {check.id} of {html.escape(service.name)}"
    body = "".join(
        f'<h2>{html.escape(name)}</h2><iframe sandbox="allow-scripts" srcdoc="{html.escape(doc, quote=True)}" '
        'style="width:100%;height:90vh;border:0"></iframe>'
        for name, doc in sections
    )
    head = f"<head><meta charset='utf-8'>{REPORT_MARK}<title>{title}</title></head>"
    return f"<!DOCTYPE html><html>{head}<body><h1>{title}</h1>{body}</body></html>"


def _outcome_kind(service: Service) -> str:
    return "categorical" if service.task == "classification" else "numerical"


def _overrides(service: Service, columns: list[str]) -> dict[str, dict[str, Any]]:
    methods = {f.name: f.drift_method for f in service.features if f.drift_method and f.name in columns}
    thresholds = {f.name: f.drift_threshold for f in service.features if f.drift_threshold and f.name in columns}
    return {"per_column_method": methods, "per_column_threshold": thresholds}
