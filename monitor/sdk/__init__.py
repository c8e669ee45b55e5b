"""mlwatch's client SDK: record predictions from any Python service.

Loads only the standard library (no pandas, mlflow, evidently, pydantic or HTTP library):

    >>> from monitor.sdk import Tracker
    >>> tracker = Tracker("credit")
    >>> tracker.log({"age": 31, "income": 5200.0}, prediction=0, latency_ms=2.1)

Middleware and wrappers, all importable from here and all standard-library only:

    >>> from monitor.sdk import MlwatchASGIMiddleware, MlwatchWSGIMiddleware, TrackedSession
    >>> app.add_middleware(MlwatchASGIMiddleware, tracker=tracker, paths=("/predict",))   # FastAPI
    >>> app.wsgi_app = MlwatchWSGIMiddleware(app.wsgi_app, tracker, paths=("/predict",))  # Flask
    >>> session = TrackedSession(onnxruntime.InferenceSession(path), tracker)             # ONNX Runtime

Batches go to the ingest API (``MLWATCH_URL``), or to a broker that ``mlwatch consume``
reads, named by ``sink=`` or ``MLWATCH_SINK`` (``monitor.sdk.sink``): NATS JetStream
(``nats://host:4222``) or, for edge devices, MQTT (``mqtt://host:1883``). The brokers'
clients are imported in the sender thread only (``pip install 'mlwatch[stream]'``):

    >>> tracker = Tracker("credit", sink="nats://127.0.0.1:4222")
    >>> tracker.metrics_text()     # stats() as Prometheus text: mlwatch_sdk_sent_records_total, ...

The bodies the middleware understands are listed in ``monitor.sdk.payloads``. Function
handlers (AWS Lambda, Google Cloud Functions) deliver each call before they return
(``monitor.sdk.serverless``):

    >>> from monitor.sdk import serverless_tracker, tracked_handler
    >>> handler = tracked_handler(serverless_tracker("credit"), handler)

Delivery never blocks the caller and never loses a record without counting it
(``tracker.stats()``); ``monitor.sdk.delivery`` has the full table. In short:

- server away (no answer, 408, 429, 503): batches wait in the spool, retried with backoff;
- another 5xx: retried ``DeliveryOptions.server_error_attempts`` times (3), then the batch
  is split in halves to find the record(s) the server fails on; those go to the
  quarantine (``<spool_dir>/quarantine/``, bounded) and the rest is delivered, so one
  poison record cannot stop the records behind it. A server that fails everything
  quarantines nothing: it is asked again with a record it took before;
- 422 and other 4xx: the refused records go to the quarantine, not retried, not deleted;
- 401/403: batches stay in the spool, one warning a minute, until a valid token comes:
  ``tracker.set_token(token)``, or a token file (``token_file=``, ``MLWATCH_TOKEN_FILE``)
  that is read again whenever the server refuses the token.
"""

from __future__ import annotations

from monitor.sdk.asgi import MlwatchASGIMiddleware
from monitor.sdk.delivery import DeliveryOptions, DeliveryStats
from monitor.sdk.onnx import TrackedSession
from monitor.sdk.serverless import Invocation, serverless_tracker, tracked_handler
from monitor.sdk.tracker import TrackedCall, Tracker
from monitor.sdk.wsgi import MlwatchWSGIMiddleware

__all__ = [
    "DeliveryOptions",
    "DeliveryStats",
    "Invocation",
    "MlwatchASGIMiddleware",
    "MlwatchWSGIMiddleware",
    "TrackedCall",
    "TrackedSession",
    "Tracker",
    "serverless_tracker",
    "tracked_handler",
]
