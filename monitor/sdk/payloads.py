"""Features, predictions and request ids out of the JSON bodies of common model servers.

Requests, one row per input:

    MLflow scoring server   ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``,
                            ``{"dataframe_records": [{...}, ...]}``, ``{"instances": ...}``,
                            ``{"inputs": ...}`` (records, row lists, or ``{"col": [values]}``)
    TF Serving, KServe V1   ``{"instances": [{...} or [...] or scalar, ...]}``
    Open Inference / V2     ``{"id": "...", "inputs": [{"name", "shape": [N] or [N, k], "data"}]}``
    anything else           a bare list of such rows, or one JSON object of scalars (one row)

A value the payload names (an object's key, a ``dataframe_split`` column, a V2 tensor of one
column among several) keeps its name. A value given by position only (a row list, a
``dataframe_split`` without columns, a V2 tensor of several columns, or the only tensor) is
*positional*: the sender names it after the service's registered features, in order, else
``f0``, ``f1``, ... the same for every protocol (``monitor.sdk.naming``).

Replies: ``{"predictions": [...]}`` (MLflow, TF Serving, KServe V1), ``{"outputs": [tensors]}``
(V2: the first tensor is the prediction, a second one the probabilities), a bare list, or one
object with ``prediction`` / ``probabilities``. A reply whose row count differs from the
request's is ignored (the rows keep their features, without predictions).

Request ids: the V2 request's ``id``; else (in ``monitor.sdk.calls``) the ``X-Request-ID``
header; else the V2 reply's ``id``. A request of several rows gives ``<id>-<row>`` to each.

``parse_exchange`` returns the rows and ids, or None when the request is not understood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

Features = dict[str, Any]
MAX_ID_CHARS = 200


@dataclass(frozen=True, slots=True)
class Row:
    """One input row and what the model answered for it; ``positional``: its values given by position, in order."""

    features: Features
    prediction: Any = None
    probabilities: Any = None
    positional: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Exchange:
    """The rows of a request/reply pair and the ids the bodies carry (V2 only)."""

    rows: list[Row]
    request_id: str | None = None
    reply_id: str | None = None


def parse(request_body: bytes, response_body: bytes | None) -> list[Row] | None:
    """Rows of a request/reply pair, or None when the request format is unknown."""
    exchange = parse_exchange(request_body, response_body)
    return exchange.rows if exchange is not None else None


def parse_exchange(request_body: bytes, response_body: bytes | None) -> Exchange | None:
    """Rows and ids of a request/reply pair, or None when the request format is unknown."""
    request = _json(request_body)
    rows = request_rows(request)
    if rows is None:
        return None
    reply = _json(response_body) if response_body else None
    outputs = reply_outputs(reply)
    if outputs is not None and len(outputs) == len(rows):
        rows = [replace(r, prediction=p, probabilities=q) for r, (p, q) in zip(rows, outputs, strict=True)]
    return Exchange(rows, _v2_id(request, "inputs"), _v2_id(reply, "outputs"))


def _json(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _v2_id(body: Any, tensors: str) -> str | None:
    """The ``id`` of an Open Inference Protocol body (one with a list of tensors), if a usable string."""
    if not isinstance(body, dict) or not isinstance(body.get(tensors), list):
        return None
    found = body.get("id")
    return found if isinstance(found, str) and 0 < len(found) <= MAX_ID_CHARS and found.isprintable() else None


def request_rows(data: Any) -> list[Row] | None:
    """The input rows of a decoded request body (without predictions), or None."""
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
        return [Row(dict(data))]
    return None


def _split(frame: Any) -> list[Row] | None:
    if not isinstance(frame, dict) or not isinstance(frame.get("data"), list):
        return None
    data, columns = frame["data"], frame.get("columns")
    if not all(isinstance(row, list) for row in data):
        return None
    if not columns:
        return [Row({}, positional=tuple(row)) for row in data]
    if not all(len(row) == len(columns) for row in data):
        return None
    return [Row(dict(zip(map(str, columns), row, strict=True))) for row in data]


def _records(items: Any) -> list[Row] | None:
    if not isinstance(items, list):
        return None
    rows: list[Row] = []
    for item in items:
        row = _row(item)
        if row is None:
            return None
        rows.append(row)
    return rows


def _row(item: Any) -> Row | None:
    if isinstance(item, dict):
        return Row({str(k): v for k, v in item.items()})
    if isinstance(item, list):
        return Row({}, positional=tuple(item))
    if _is_scalar(item):
        return Row({}, positional=(item,))
    return None


def _inputs(inputs: Any) -> list[Row] | None:
    if isinstance(inputs, list) and inputs and all(isinstance(t, dict) and "data" in t for t in inputs):
        return _tensors(inputs)
    if isinstance(inputs, dict) and all(isinstance(v, list) for v in inputs.values()):
        return _columns(inputs)
    return _records(inputs)


def _columns(columns: dict[str, list[Any]]) -> list[Row] | None:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        return None
    names = list(columns)
    return [Row({n: columns[n][i] for n in names}) for i in range(lengths.pop())]


def _tensors(tensors: list[dict[str, Any]]) -> list[Row] | None:
    """Open Inference Protocol inputs: tensors [N] or [N, k], side by side, make N rows.

    Among several tensors, one of a single column is a named feature (MLServer's pandas
    codec sends a tensor per column); the only tensor, or one of several columns, gives
    positional values.
    """
    matrices = [_matrix(t) for t in tensors]
    if any(m is None for m in matrices) or len({len(m or []) for m in matrices}) != 1:
        return None
    named = len(tensors) > 1
    rows: list[Row] = []
    for i in range(len(matrices[0] or [])):
        features: Features = {}
        positional: list[Any] = []
        for tensor, matrix in zip(tensors, matrices, strict=True):
            values = (matrix or [])[i]
            if named and len(values) == 1:
                features[str(tensor.get("name", "input"))] = values[0]
            else:
                positional.extend(values)
        rows.append(Row(features, positional=tuple(positional)))
    return rows


def _matrix(tensor: dict[str, Any]) -> list[list[Any]] | None:
    """The tensor's values as N rows of k, from its shape; None when shape and data disagree."""
    values = _flatten(tensor["data"])
    shape = tensor.get("shape") or [len(values)]
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    n = shape[0]
    width = len(values) // n if n else 0
    if n * width != len(values):
        return None
    return [values[i * width : (i + 1) * width] for i in range(n)]


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
    matrices = [_matrix(t) for t in outputs if isinstance(t, dict) and "data" in t]
    if not matrices or matrices[0] is None:
        return None
    predictions = [v[0] if len(v) == 1 else v for v in matrices[0]]
    second = matrices[1] if len(matrices) > 1 else None
    if second is not None and len(second) == len(predictions):
        return [(p, q) for p, q in zip(predictions, second, strict=True)]
    return [(p, None) for p in predictions]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
