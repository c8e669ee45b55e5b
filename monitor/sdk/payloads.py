"""Features and predictions out of the JSON bodies of common model servers.

Requests: MLflow's scoring server (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``), TF Serving and KServe V1 (``instances``), the Open Inference
Protocol / KServe V2 (``inputs`` tensors), and a plain JSON object of scalars (one row).
Replies: ``predictions`` (MLflow, TF Serving, KServe V1), ``outputs`` tensors (V2), a bare
list, or an object with ``prediction`` / ``probabilities``.

``parse`` returns one ``Row`` per input row, or None when the request is not understood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Features = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    """One input row and what the model answered for it."""

    features: Features
    prediction: Any = None
    probabilities: Any = None


def parse(request_body: bytes, response_body: bytes | None) -> list[Row] | None:
    """Rows of a request/reply pair, or None when the request format is unknown."""
    request = _json(request_body)
    if request is None:
        return None
    rows = request_rows(request)
    if rows is None:
        return None
    outputs = reply_outputs(_json(response_body) if response_body else None)
    if outputs is None or len(outputs) != len(rows):
        return [Row(r) for r in rows]
    return [Row(r, p, q) for r, (p, q) in zip(rows, outputs, strict=True)]


def _json(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def request_rows(data: Any) -> list[Features] | None:
    """The feature rows of a decoded request body, or None."""
    if isinstance(data, list):
        return _records(data)
    if not isinstance(data, dict):
        return None
    if "dataframe_split" in data:
        return _split(data["dataframe_split"])
    if "dataframe_records" in data:
        return _records(data["dataframe_records"])
    if "instances" in data:
        return _records(data["instances"])
    if "inputs" in data:
        return _inputs(data["inputs"])
    if data and all(_is_scalar(v) for v in data.values()):
        return [dict(data)]
    return None


def _split(frame: Any) -> list[Features] | None:
    if not isinstance(frame, dict) or not isinstance(frame.get("data"), list):
        return None
    data = frame["data"]
    columns = frame.get("columns") or [f"f{i}" for i in range(len(data[0]) if data else 0)]
    if not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        return None
    return [dict(zip(map(str, columns), row, strict=True)) for row in data]


def _records(items: Any) -> list[Features] | None:
    if not isinstance(items, list):
        return None
    rows: list[Features] = []
    for item in items:
        row = _row(item)
        if row is None:
            return None
        rows.append(row)
    return rows


def _row(item: Any) -> Features | None:
    if isinstance(item, dict):
        return {str(k): v for k, v in item.items()}
    if isinstance(item, list):
        return {f"f{i}": v for i, v in enumerate(item)}
    if _is_scalar(item):
        return {"f0": item}
    return None


def _inputs(inputs: Any) -> list[Features] | None:
    if isinstance(inputs, list) and inputs and all(isinstance(t, dict) and "data" in t for t in inputs):
        return _tensors(inputs)
    if isinstance(inputs, dict) and all(isinstance(v, list) for v in inputs.values()):
        return _columns(inputs)
    return _records(inputs)


def _columns(columns: dict[str, list[Any]]) -> list[Features] | None:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        return None
    names = list(columns)
    return [{n: columns[n][i] for n in names} for i in range(lengths.pop())]


def _tensors(tensors: list[dict[str, Any]]) -> list[Features] | None:
    """Open Inference Protocol inputs: each tensor [N] or [N, k] adds k features to N rows."""
    per_tensor = [_tensor_rows(t) for t in tensors]
    if any(rows is None for rows in per_tensor) or len({len(r or []) for r in per_tensor}) != 1:
        return None
    merged: list[Features] = [{} for _ in per_tensor[0] or []]
    for rows in per_tensor:
        for target, row in zip(merged, rows or [], strict=True):
            target.update(row)
    return merged


def _tensor_rows(tensor: dict[str, Any]) -> list[Features] | None:
    name = str(tensor.get("name", "input"))
    values = _flatten(tensor["data"])
    shape = tensor.get("shape") or [len(values)]
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    n = shape[0]
    width = len(values) // n if n else 0
    if n * width != len(values):
        return None
    if len(shape) == 1 or width == 1:
        return [{name: values[i * width]} for i in range(n)]
    return [{f"{name}_{j}": values[i * width + j] for j in range(width)} for i in range(n)]


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    return [x for v in data for x in _flatten(v)]


def reply_outputs(data: Any) -> list[tuple[Any, Any]] | None:
    """(prediction, probabilities) per row of a decoded reply, or None."""
    if isinstance(data, list):
        return [_prediction(p) for p in data]
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("predictions"), list):
        return [_prediction(p) for p in data["predictions"]]
    if isinstance(data.get("outputs"), list):
        return _output_tensors(data["outputs"])
    if "prediction" in data:
        return [(data["prediction"], data.get("probabilities"))]
    return None


def _prediction(item: Any) -> tuple[Any, Any]:
    if isinstance(item, dict):
        probabilities = item.get("probabilities")
        value = item.get("prediction", next(iter(item.values()), None))
        return value, probabilities
    return item, None


def _output_tensors(outputs: list[Any]) -> list[tuple[Any, Any]] | None:
    rows = [_tensor_rows(t) for t in outputs if isinstance(t, dict) and "data" in t]
    if not rows or rows[0] is None:
        return None
    first = rows[0]
    predictions = [next(iter(r.values())) if len(r) == 1 else list(r.values()) for r in first]
    second = rows[1] if len(rows) > 1 else None
    if second is not None and len(second) == len(first):
        return [(p, list(q.values())) for p, q in zip(predictions, second, strict=True)]
    return [(p, None) for p in predictions]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
