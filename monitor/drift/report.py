"""The full Evidently HTML report of a check, produced on demand and kept with the check.

The report runs Evidently's ``DataDriftPreset`` (with the service's per-feature method and
threshold overrides) over the check's window sample and the reference, both bounded by
the service's ``sample_size``, and includes prediction and target columns when present.
"""

from __future__ import annotations

import pandas as pd

from monitor.drift.check import DEFAULT_SAMPLE_SIZE
from monitor.drift.reference import PREDICTION, feature_types, target_column
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
    html = render(store, service, check)
    store.set_check_report(check_id, html)
    return html


def render(store: Store, service: Service, check: CheckRecord) -> bytes:
    """Render the Evidently report of ``check`` (NotFound when the service has no reference)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    limit = int(service.config.get("sample_size", DEFAULT_SAMPLE_SIZE))
    reference, _ = store.get_reference(service, check.model_version)
    current = _current_frame(store, service, check, limit)
    types = feature_types(service, reference)
    columns = [c for c in [*types, PREDICTION, target_column(service)] if c in reference and c in current]
    kinds = {**types, PREDICTION: _outcome_kind(service), target_column(service): _outcome_kind(service)}
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numerical"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
        text_columns=[c for c in columns if kinds[c] == "text"],
    )
    preset = DataDriftPreset(columns=columns, **_overrides(service, columns))
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(_bounded(reference, limit)[columns], data_definition=definition),
    )
    return snapshot.get_html_str(as_iframe=False).encode()


def _current_frame(store: Store, service: Service, check: CheckRecord, limit: int) -> pd.DataFrame:
    window = window_sample(store.sample_columns(service, check.window_start, check.window_end, limit))
    frame = window.features.copy()
    frame[PREDICTION] = window.predictions.to_numpy()
    labels = window.labels.where(pd.Series(window.has_label), None)
    if window.has_label.any():
        frame[target_column(service)] = labels.to_numpy()
    return frame


def _bounded(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    return frame if len(frame) <= limit else frame.sample(limit, random_state=0)


def _outcome_kind(service: Service) -> str:
    return "categorical" if service.task == "classification" else "numerical"


def _overrides(service: Service, columns: list[str]) -> dict[str, dict[str, object]]:
    methods = {f.name: f.drift_method for f in service.features if f.drift_method and f.name in columns}
    thresholds = {f.name: f.drift_threshold for f in service.features if f.drift_threshold and f.name in columns}
    return {"per_column_method": dict(methods), "per_column_threshold": dict(thresholds)}
