"""The full Evidently HTML report of a check, produced on demand and kept with the check.

Two Evidently reports, on one page:

- drift: ``DataDriftPreset`` (with the service's per-feature method and threshold
  overrides) over the window sample and the reference, with prediction and target columns;
- quality, once the window has labels and the reference has predictions:
  ``ClassificationPreset`` or ``RegressionPreset`` on the labelled rows of both.

Both sides are bounded by the service's ``sample_size``, so a report costs the same on
any window.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from monitor.drift.check import DEFAULT_SAMPLE_SIZE
from monitor.drift.reference import PREDICTION, feature_types, target_column, value_keys
from monitor.drift.window import window_sample
from monitor.errors import Conflict
from monitor.records import CheckRecord, Service
from monitor.store import Store


def check_report(store: Store, check_id: int, *, regenerate: bool = False) -> bytes:
    """The HTML report of check ``check_id``: the kept one, else rendered now and kept."""
    kept = None if regenerate else store.check_report(check_id)
    if kept is not None:
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
    limit = int(service.config.get("sample_size", DEFAULT_SAMPLE_SIZE))
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
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    types = feature_types(service, reference)
    outcome = _outcome_kind(service)
    kinds = {**types, PREDICTION: outcome, target_column(service): outcome}
    columns = [c for c in kinds if c in reference.columns and c in current.columns]
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numerical"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
        text_columns=[c for c in columns if kinds[c] == "text"],
    )
    preset = DataDriftPreset(columns=columns, **_overrides(service, columns))
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    return str(snapshot.get_html_str(as_iframe=False))


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
    return str(Report([preset]).run(current_set, reference_set).get_html_str(as_iframe=False))


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
    """One page holding each Evidently report in a frame of its own (their scripts stay apart)."""
    title = f"mlwatch check {check.id} of {html.escape(service.name)}"
    body = "".join(
        f'<h2>{html.escape(name)}</h2><iframe srcdoc="{html.escape(doc, quote=True)}" '
        'style="width:100%;height:90vh;border:0"></iframe>'
        for name, doc in sections
    )
    head = f"<head><meta charset='utf-8'><title>{title}</title></head>"
    return f"<!DOCTYPE html><html>{head}<body><h1>{title}</h1>{body}</body></html>"


def _outcome_kind(service: Service) -> str:
    return "categorical" if service.task == "classification" else "numerical"


def _overrides(service: Service, columns: list[str]) -> dict[str, dict[str, Any]]:
    methods = {f.name: f.drift_method for f in service.features if f.drift_method and f.name in columns}
    thresholds = {f.name: f.drift_threshold for f in service.features if f.drift_threshold and f.name in columns}
    return {"per_column_method": methods, "per_column_threshold": thresholds}
