"""A wrapper for an ONNX Runtime ``InferenceSession`` that records every ``run``.

    >>> import onnxruntime
    >>> session = TrackedSession(onnxruntime.InferenceSession("model.onnx"), Tracker("credit"))
    >>> labels, probabilities = session.run(None, {"input": batch})

onnxruntime itself is never imported here: any object with ``run(output_names, feeds)`` and
``get_inputs()`` works. Each row of a 2-D input becomes one record whose features are the
names given in ``feature_names``, else the service's registered features in order, else
``f0``, ``f1``, ... (as for every positional input, ``monitor.sdk.schema``); the first output
is the prediction and, when there is a second, it is taken as the probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from monitor.sdk.tracker import Tracker


class TrackedSession:
    """Delegates to the wrapped session; ``run`` is timed and its rows are logged."""

    def __init__(self, session: Any, tracker: Tracker, *, feature_names: Sequence[str] | None = None) -> None:
        self._session = session
        self._tracker = tracker
        self._names = list(feature_names) if feature_names is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Run the model; record one prediction per input row (an error if it raised)."""
        start = time.perf_counter()
        try:
            outputs = self._session.run(output_names, input_feed, *args, **kwargs)
        except Exception:
            self._log(input_feed, None, start, "error")
            raise
        self._log(input_feed, outputs, start, "ok")
        return outputs

    def _log(self, feed: dict[str, Any], outputs: Any, start: float, status: str) -> None:
        latency = (time.perf_counter() - start) * 1000.0
        try:
            rows = self._rows(feed)
            predictions = _column(outputs, 0, len(rows))
            probabilities = _column(outputs, 1, len(rows))
        except Exception:
            self._tracker.log({}, None, latency_ms=latency, status=status)
            return
        for row, prediction, probs in zip(rows, predictions, probabilities, strict=True):
            self._tracker.log(row, prediction, probabilities=probs, latency_ms=latency, status=status)

    def _rows(self, feed: dict[str, Any]) -> list[Any]:
        value = next(iter(feed.values()))
        matrix = value.tolist() if hasattr(value, "tolist") else value
        matrix = [matrix] if matrix and not isinstance(matrix[0], list) else matrix
        if self._names is None:
            return [list(row) for row in matrix]  # positional: named by the tracker
        return [dict(zip(self._names, row, strict=False)) for row in matrix]


def _column(outputs: Any, index: int, rows: int) -> list[Any]:
    if outputs is None or len(outputs) <= index:
        return [None] * rows
    values = outputs[index]
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    return values if len(values) == rows else [None] * rows
