"""mlwatch's client SDK: record predictions from any Python service.

Loads only the standard library (no pandas, mlflow, evidently, pydantic or HTTP library):

    >>> from monitor.sdk import Tracker
    >>> tracker = Tracker("credit")
    >>> tracker.log({"age": 31, "income": 5200.0}, prediction=0, latency_ms=2.1)

Middleware: ``monitor.sdk.asgi.MlwatchASGIMiddleware`` (FastAPI, Starlette) and
``monitor.sdk.wsgi.MlwatchWSGIMiddleware`` (Flask); ONNX Runtime: ``monitor.sdk.onnx``.
"""

from __future__ import annotations

from monitor.sdk.delivery import DeliveryOptions, DeliveryStats
from monitor.sdk.tracker import TrackedCall, Tracker

__all__ = ["DeliveryOptions", "DeliveryStats", "TrackedCall", "Tracker"]
