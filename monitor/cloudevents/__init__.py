"""KServe's InferenceLogger as a payload source: CloudEvents in, predictions out.

KServe's logger (a Go sidecar beside each InferenceService that sets ``logger:``) posts every
inference as two CloudEvents in binary mode: the request (``ce-type``
``org.kubeflow.serving.inference.request``) and then the response (``...inference.response``),
with one ``ce-id`` (the request id), the InferenceService in ``ce-inferenceservicename`` and
``ce-namespace``, and the ``ce-component`` and ``ce-endpoint`` that served it. Its workers
send them concurrently, so either may come first.

``events`` reads an event (``CloudEventIn``, the structured-mode body and the OpenAPI schema;
binary mode is the same attributes from ``ce-*`` headers) into an ``InferenceEvent``;
``pairing`` joins the two halves of each ``ce-id`` into prediction records, keeping the first
to come in the store (``monitor.store.halves``) until the other does, and writes them through
``monitor.ingest.Ingestor``, the same checks as ``POST /v1/services/{service}/predictions``.
"""
