"""Features, predictions and request ids out of the JSON bodies of common model servers.

Requests, one row per input:

    MLflow scoring server   ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``,
                            ``{"dataframe_records": [{...}, ...]}``, ``{"instances": ...}``,
                            ``{"inputs": ...}`` (records, row lists, or ``{"col": [values]}``)
    TF Serving, KServe V1   ``{"instances": [{...} or [...] or scalar, ...]}`` (row format),
                            ``{"inputs": {"name": [values], ...}}`` or ``{"inputs": [...]}``
                            (columnar format); ``signature_name`` is ignored
    Open Inference / V2     ``{"id": "...", "inputs": [{"name", "shape": [N] or [N, k], "data"}]}``
    Hugging Face Inference  ``{"inputs": "text" or ["text", ...] or {"text": ..., "text_pair": ...},
                            "parameters": {...}}``: a text is a positional value (one feature)
    anything else           a bare list of such rows, or one JSON object of scalars (one row)

A value the payload names (an object's key, a ``dataframe_split`` column, a V2 tensor of one
column among several) keeps its name. A value given by position only (a row list, a
``dataframe_split`` without columns, a V2 tensor of several columns, or the only tensor) is
*positional*: the sender names it after the service's registered features, in order, else
``f0``, ``f1``, ... the same for every protocol (``monitor.sdk.naming``).

Replies: ``{"predictions": [...]}`` (MLflow, TF Serving, KServe V1; a row object's
``probabilities`` or ``scores`` are the probabilities), ``{"outputs": [tensors]}`` (V2: the
first tensor is the prediction, a second one the probabilities), ``{"outputs": [values]}`` or
``{"outputs": {"name": [values], ...}}`` (TF Serving's columnar replies: the first output is
the prediction, one named ``probabilities`` or ``scores`` the probabilities), a bare list, or
one object with ``prediction`` / ``probabilities``. Hugging Face pipeline replies give the
top label as the prediction and every label's score as the probabilities: ``[{"label",
"score"}, ...]`` (the top label per input, or all labels of a single input), ``[[{"label",
"score"}, ...], ...]`` (all labels, per input), and zero-shot's ``{"labels": [...], "scores":
[...]}`` (one per input). A reply whose row count differs from the request's is ignored (the
rows keep their features, without predictions).

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
    outputs = reply_outputs(reply, len(rows))
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
    if isinstance(inputs, str):  # Hugging Face: one text
        return [Row({}, positional=(inputs,))]
    if isinstance(inputs, list) and inputs and all(isinstance(t, dict) and "data" in t for t in inputs):
        return _tensors(inputs)
    if isinstance(inputs, dict) and inputs and all(isinstance(v, list) for v in inputs.values()):
        return _columns(inputs)
    if isinstance(inputs, dict) and inputs and all(_is_scalar(v) for v in inputs.values()):
        return [Row({str(k): v for k, v in inputs.items()})]  # Hugging Face: {"text": ..., "text_pair": ...}
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


def reply_outputs(data: Any, rows: int | None = None) -> list[tuple[Any, Any]] | None:
    """(prediction, probabilities) per row of a decoded reply to a request of ``rows`` rows, or None."""
    if isinstance(data, list):
        return _list_outputs(data, rows)
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("predictions"), list):
        return [_prediction(p) for p in data["predictions"]]
    if isinstance(data.get("outputs"), list):
        if data["outputs"] and all(isinstance(t, dict) and "data" in t for t in data["outputs"]):
            return _output_tensors(data["outputs"])
        return [(p, None) for p in data["outputs"]]  # TF Serving, columnar: one output
    if isinstance(data.get("outputs"), dict):
        return _named_outputs(data["outputs"])
    if _is_zero_shot(data):
        return [_zero_shot(data)]
    if "prediction" in data:
        return [(data["prediction"], data.get("probabilities"))]
    return None


def _list_outputs(data: list[Any], rows: int | None) -> list[tuple[Any, Any]]:
    if data and all(_is_label_score(item) for item in data):
        # Hugging Face: the top label of each input, or every label of the only input
        return [_top_label(data)] if rows == 1 and len(data) > 1 else [_top_label([item]) for item in data]
    if data and all(isinstance(item, list) and item and all(map(_is_label_score, item)) for item in data):
        return [_top_label(item) for item in data]  # Hugging Face: every label, per input
    if data and all(_is_zero_shot(item) for item in data):
        return [_zero_shot(item) for item in data]
    return [_prediction(p) for p in data]


_PROBABILITIES = ("probabilities", "scores")
"""Names of the output that holds class probabilities, in a reply's row object or columnar outputs."""


def _prediction(item: Any) -> tuple[Any, Any]:
    if isinstance(item, dict):
        probabilities = next((item[name] for name in _PROBABILITIES if name in item), None)
        others = (v for k, v in item.items() if k not in _PROBABILITIES)
        value = item["prediction"] if "prediction" in item else next(others, None)
        return value, probabilities
    return item, None


def _named_outputs(outputs: dict[str, Any]) -> list[tuple[Any, Any]] | None:
    """TF Serving's columnar reply of several named outputs: the first one not of probabilities
    is the prediction."""
    columns = {k: v for k, v in outputs.items() if isinstance(v, list)}
    if not columns or len({len(v) for v in columns.values()}) != 1:
        return None
    probabilities = next((columns[name] for name in _PROBABILITIES if name in columns), None)
    predictions = next((v for k, v in columns.items() if k not in _PROBABILITIES), None)
    if predictions is None:
        return None
    return [(p, probabilities[i] if probabilities else None) for i, p in enumerate(predictions)]


def _is_label_score(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("label"), str) and _is_number(item.get("score"))


def _top_label(items: list[dict[str, Any]]) -> tuple[Any, Any]:
    """The label with the highest score, and every label's score."""
    top = max(items, key=lambda item: item["score"])
    return top["label"], {item["label"]: item["score"] for item in items}


def _is_zero_shot(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("labels"), list):
        return False
    labels, scores = item["labels"], item.get("scores")
    return (
        isinstance(scores, list)
        and bool(labels)
        and len(labels) == len(scores)
        and all(isinstance(label, str) for label in labels)
        and all(map(_is_number, scores))
    )


def _zero_shot(item: dict[str, Any]) -> tuple[Any, Any]:
    scores = dict(zip(item["labels"], item["scores"], strict=True))
    return max(scores, key=scores.__getitem__), scores


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
