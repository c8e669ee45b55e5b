"""A real text classifier (a scikit-learn TF-IDF pipeline) served in the Hugging Face Inference
API's shapes, watched by `mlwatch proxy` and by the SDK's ASGI middleware, both sending to a
real `mlwatch server`: the text arrives as a text feature, the top label as the prediction,
every label's score as the probabilities."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from monitor.records import StoredPrediction
from monitor.sdk import DeliveryOptions, MlwatchASGIMiddleware, Tracker
from tests.collectors.conftest import stored
from tests.collectors.mlflow_serving import proxying
from tests.conftest import RunningServer, free_port

MODEL = "/models/acme/sentiment"
GOOD = ["wonderful", "great", "lovely", "superb", "delightful", "moving"]
BAD = ["awful", "boring", "dull", "terrible", "clumsy", "tedious"]
FILLER = ["the", "film", "plot", "cast", "was", "really", "quite", "and", "music"]


def _corpus(seed: int = 20) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(400):
        label, words = ("POSITIVE", GOOD) if i % 2 else ("NEGATIVE", BAD)
        texts.append(" ".join(rng.sample(FILLER, 4) + rng.sample(words, 2)))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def classifier() -> Pipeline:
    texts, labels = _corpus()
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)


def _scores(classifier: Pipeline, text: str) -> dict[str, float]:
    return {str(c): float(p) for c, p in zip(classifier.classes_, classifier.predict_proba([text])[0], strict=True)}


def _inference_api(classifier: Pipeline) -> Starlette:
    """The text-classification replies of the Hugging Face Inference API (``transformers``'
    pipeline): top label per input by default, ``top_k`` labels per input (None: all), nested."""

    async def classify(request: Request) -> Response:
        body = await request.json()
        inputs = body["inputs"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        parameters = body.get("parameters") or {}
        ranked = [
            sorted(({"label": k, "score": v} for k, v in _scores(classifier, t).items()), key=lambda s: -s["score"])
            for t in texts
        ]
        if "top_k" not in parameters:
            return JSONResponse([labels[0] for labels in ranked])
        top_k = parameters["top_k"]
        return JSONResponse([labels if top_k is None else labels[:top_k] for labels in ranked])

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route(MODEL, classify, methods=["POST"]), Route("/ping", ping)])


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _register_text(api: RunningServer, name: str) -> None:
    body = {"name": name, "task": "classification", "features": [{"name": "review", "type": "text"}]}
    with api.client() as client:
        client.post("/v1/services", json=body).raise_for_status()


def _wait_stored(api: RunningServer, service: str, count: int, timeout: float = 20.0) -> list[StoredPrediction]:
    deadline = time.monotonic() + timeout
    while len(rows := stored(api, service)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


CALLS: list[tuple[dict[str, Any], str]] = [
    ({"inputs": "a wonderful film with a lovely cast"}, "one"),
    ({"inputs": ["the plot was dull and tedious", "superb music, great cast"]}, "two"),
    ({"inputs": "an awful and boring film", "parameters": {"top_k": None}}, "all"),
    ({"inputs": ["really moving", "clumsy and terrible"], "parameters": {"top_k": None}}, "both"),
]


def _expected(classifier: Pipeline) -> dict[str, tuple[dict[str, Any], str, dict[str, float]]]:
    """request id -> (features, top label, probabilities), from the classifier itself."""
    expected = {}
    for body, request_id in CALLS:
        inputs = body["inputs"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        every = "parameters" in body
        for i, text in enumerate(texts):
            scores = _scores(classifier, text)
            top = max(scores, key=scores.__getitem__)
            key = request_id if isinstance(inputs, str) else f"{request_id}-{i}"
            expected[key] = ({"review": text}, top, scores if every else {top: scores[top]})
    return expected


def _observed(rows: list[StoredPrediction]) -> dict[str, tuple[dict[str, Any], Any, Any]]:
    return {r.request_id: (r.features, r.prediction, r.probabilities) for r in rows}


def _assert_close(observed: dict[str, tuple[Any, Any, Any]], expected: dict[str, tuple[Any, Any, Any]]) -> None:
    assert observed.keys() == expected.keys()
    for key, (features, label, scores) in expected.items():
        assert observed[key][:2] == (features, label), key
        assert observed[key][2] == pytest.approx(scores), key


def test_the_proxy_logs_the_text_the_top_label_and_the_scores_of_a_real_text_classifier(
    api: RunningServer, classifier: Pipeline, tmp_path: Path
) -> None:
    _register_text(api, "reviews")  # before the proxy starts: it reads the schema then
    with (
        _serving(_inference_api(classifier)) as target,
        proxying(target, "reviews", api.url, api.token, tmp_path, "--path", MODEL) as url,
        httpx.Client(base_url=url) as client,
    ):
        replies = [client.post(MODEL, json=body, headers={"X-Request-ID": rid}) for body, rid in CALLS]
        assert [r.status_code for r in replies] == [200] * len(CALLS)
        assert replies[0].json()[0]["label"] == "POSITIVE"  # answered by the model, unchanged by the proxy
        rows = _wait_stored(api, "reviews", 6)
    _assert_close(_observed(rows), _expected(classifier))


def test_the_asgi_middleware_logs_the_same_rows_inside_the_app(
    api: RunningServer, classifier: Pipeline, tmp_path: Path
) -> None:
    _register_text(api, "reviews-sdk")
    options = DeliveryOptions(flush_interval=0.05)
    tracker = Tracker(
        "reviews-sdk", url=api.url, token=api.token, spool_dir=tmp_path, options=options, flush_at_exit=False
    )
    app = MlwatchASGIMiddleware(_inference_api(classifier), tracker, paths=(MODEL,))
    try:
        with _serving(app) as url, httpx.Client(base_url=url) as client:
            replies = [client.post(MODEL, json=body, headers={"X-Request-ID": rid}) for body, rid in CALLS]
            assert [r.status_code for r in replies] == [200] * len(CALLS)
        assert tracker.flush(10)
    finally:
        tracker.close()
    _assert_close(_observed(stored(api, "reviews-sdk")), _expected(classifier))
