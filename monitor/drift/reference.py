"""Reference data: reading uploads, Parquet in and out, and per-column statistics computed once.

A reference frame holds the service's feature columns and, optionally, the columns that
let quality be compared with a baseline:

- the target column (``service.target``, else ``target``),
- ``prediction``: what the model predicted for that row,
- ``proba_<class>``: predicted probability of each class (classifiers).

Its statistics (``column_stats``) are computed here, once (``reference_data``), stored next to
it and read by every check.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from monitor.config import Settings
from monitor.errors import MlwatchError, ValidationFailed
from monitor.records import ReferenceData, ReferenceInfo, Service
from monitor.store.storable import text_problem

if TYPE_CHECKING:
    from monitor.store import Store

PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
MAX_CATEGORIES = 1000
"""Categorical values kept in the statistics (for new-category detection)."""


def value_key(value: Any) -> str:
    """A comparable text key for a category or class: ``True``→"1", ``2.0``→"2", ``"a"``→"a"."""
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def value_keys(values: pd.Series) -> pd.Series:
    """``value_key`` of every value, vectorized for the common uniform columns (no missing values expected)."""
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string":
        return values.astype(object)
    if kind == "integer":
        return values.astype("int64").astype(str).astype(object)
    if kind == "boolean":
        return values.astype(bool).map({True: "1", False: "0"}).astype(object)
    return values.map(value_key)


def target_column(service: Service) -> str:
    """The label column of reference data: the service's target, else ``target``."""
    return service.target or "target"


def feature_types(service: Service, frame: pd.DataFrame) -> dict[str, str]:
    """Type of each feature: as registered, else inferred (numeric → numerical, else categorical)."""
    if service.features:
        return {f.name: f.type for f in service.features}
    roles = {target_column(service), PREDICTION}
    names = [c for c in frame.columns if c not in roles and not str(c).startswith(PROBA_PREFIX)]
    return {str(c): _infer_type(frame[c]) for c in names}


def _infer_type(column: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return "numerical" if numeric else "categorical"


def read_upload(data: bytes, filename: str = "", content_type: str = "") -> pd.DataFrame:
    """Parse an uploaded reference: Parquet (by magic bytes), else CSV; ValidationFailed if neither."""
    if data[:4] == b"PAR1":
        return frame_from_parquet(data)
    if filename.endswith(".parquet") or "parquet" in content_type:
        raise ValidationFailed("file", "expected a Parquet file, but the upload does not start with PAR1")
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValidationFailed("file", f"expected a Parquet or CSV file with a header row: {exc}") from exc
    if frame.empty or len(frame.columns) == 0:
        raise ValidationFailed("file", "expected a Parquet or CSV file with a header row and at least one data row")
    return frame


def frame_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    """A reference frame from JSON records (``[{"feature": value, ...}, ...]``) of scalar values.

    A nested value is refused before pandas sees it: a record nested 1,000 levels deep made
    pandas recurse until RecursionError.
    """
    _check_flat(records)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        raise ValidationFailed("records", "expected at least one record")
    return frame


def _check_flat(records: list[dict[str, Any]]) -> None:
    """ValidationFailed naming the first record that is not an object of scalar values."""
    if not isinstance(records, list):
        raise ValidationFailed("records", f"expected a list of records, got {type(records).__name__}")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValidationFailed(f"records[{i}]", f"expected an object of column: value, got {type(record).__name__}")
        for name, value in record.items():
            if isinstance(value, dict | list | tuple):
                kind = "an object" if isinstance(value, dict) else "a list"
                raise ValidationFailed(
                    f"records[{i}].{str(name)[:40]}", f"expected a number, text, boolean or null, got {kind}"
                )


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    """Read Parquet bytes; ValidationFailed with the reader's message if they are not Parquet."""
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt input
        raise ValidationFailed("file", f"expected a readable Parquet file: {exc}") from exc


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of ``frame`` (columns named by text, index dropped)."""
    out = io.BytesIO()
    named = frame.rename(columns=str).reset_index(drop=True)
    for column in named.columns:
        if named[column].dtype == object:
            named[column] = _uniform_object(named[column])
    named.to_parquet(out, index=False)
    return out.getvalue()


def _uniform_object(column: pd.Series) -> pd.Series:
    """Parquet needs one type per column: mixed objects are stored as text."""
    kinds = {type(v) for v in column.dropna()}
    return column if len(kinds) <= 1 else column.map(lambda v: v if v is None else str(v))


def keep_reference(
    store: Store, service: Service, data: pd.DataFrame | bytes, model_version: str = "", source: str = "api"
) -> ReferenceInfo:
    """Set ``data`` (a DataFrame or Parquet bytes) as the reference of ``service`` for ``model_version``.

    >>> keep_reference(store, store.get_service("credit"), frame, source="cli:train.parquet")
    """
    return store.set_reference(service, reference_data(data, service), model_version, source)


def reference_data(data: pd.DataFrame | bytes, service: Service) -> ReferenceData:
    """``data`` checked and ready for the store: as Parquet, with its statistics computed."""
    frame = frame_from_parquet(data) if isinstance(data, bytes) else data
    if frame.empty:
        raise ValidationFailed("reference", "expected at least one row of reference data, got none")
    _check_columns(frame)
    stats = column_stats(frame, service)
    if service.features and not stats["columns"]:
        expected = ", ".join(f.name for f in service.features[:20])
        got = ", ".join(map(str, frame.columns[:20]))
        raise ValidationFailed("reference", f"expected columns named after the features ({expected}), got {got}")
    return ReferenceData(frame_to_parquet(frame), len(frame), stats)


def _check_columns(frame: pd.DataFrame) -> None:
    """Column names end up in JSON statistics and check results: each must be storable text."""
    for name in frame.columns:
        problem = text_problem(str(name), 200)
        if problem:
            raise ValidationFailed("reference.columns", f"{problem} (column {str(name)[:40]!r})")


def column_stats(frame: pd.DataFrame, service: Service) -> dict[str, Any]:
    """Per-column statistics of a reference, and the quality baseline when it has labels and predictions."""
    from monitor.drift.quality import baseline_from_reference

    types = feature_types(service, frame)
    columns = {name: _stats(frame[name], kind) for name, kind in types.items() if name in frame.columns}
    missing = sorted(set(types) - set(frame.columns))
    return {
        "rows": len(frame),
        "frame_columns": [str(c) for c in frame.columns],
        "columns": columns,
        "missing_columns": missing,
        "baseline": baseline_from_reference(frame, service),
    }


def _stats(column: pd.Series, kind: str) -> dict[str, Any]:
    present = column.dropna()
    out: dict[str, Any] = {"type": kind, "rows": len(column), "missing": int(len(column) - len(present))}
    if kind == "numerical":
        out.update(_numeric_stats(pd.to_numeric(present, errors="coerce").dropna()))
    elif kind == "categorical":
        counts = value_keys(present).value_counts()
        out["n_unique"] = len(counts)
        out["values"] = [str(v) for v in counts.index[:MAX_CATEGORIES]]
        out["values_complete"] = len(counts) <= MAX_CATEGORIES
    else:
        out["mean_length"] = _finite(present.astype(str).str.len().mean())
    return out


def _numeric_stats(values: pd.Series) -> dict[str, Any]:
    array = values.to_numpy(dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "n_unique": 0}
    return {
        "min": float(array.min()),
        "max": float(array.max()),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "n_unique": int(np.unique(array).size),
    }


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def sync_configured_references(settings: Settings, store: Store) -> list[str]:
    """Load each service's ``reference:`` file from the configuration when it is newer than the stored one.

    Returns one line per problem (missing or unreadable file); a bad file never stops the caller.
    """
    problems = []
    for config in settings.services:
        if not config.reference:
            continue
        try:
            _sync_one(store, config.name, Path(config.reference))
        except (OSError, MlwatchError) as exc:
            problems.append(f"service {config.name}: reference {config.reference}: {exc}")
    return problems


def _sync_one(store: Store, name: str, path: Path) -> None:
    service = store.get_service(name)
    stored = store.reference_info(service, "")
    if stored is not None and stored.source == f"config:{path}" and stored.created_at >= path.stat().st_mtime:
        return
    keep_reference(store, service, read_upload(path.read_bytes(), path.name), source=f"config:{path}")
