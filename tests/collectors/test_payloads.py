"""Features and predictions parsed out of the payloads of common model servers."""

from __future__ import annotations

import gzip
import json

import pytest

from monitor.sdk.calls import Encoder, FeatureFilter, RawCall
from monitor.sdk.payloads import Row, parse
from monitor.sdk.schema import Names, Schema


def _parse(request: object, reply: object) -> list[Row] | None:
    return parse(json.dumps(request).encode(), json.dumps(reply).encode())


@pytest.mark.parametrize(
    "request_body",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
        {"dataframe_split": {"columns": ["a", "b"], "index": [7, 8], "data": [[1, 2], [3, 4]]}},
        {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        {"inputs": {"a": [1, 3], "b": [2, 4]}},
    ],
)
def test_mlflow_and_kserve_v1_requests_give_one_named_row_per_input(request_body: object) -> None:
    rows = _parse(request_body, {"predictions": [0, 1]})
    assert rows == [Row({"a": 1, "b": 2}, 0), Row({"a": 3, "b": 4}, 1)]


def test_tf_serving_row_lists_become_positional_values_and_vector_predictions_stay_lists() -> None:
    rows = _parse({"instances": [[1.0, 2.0], [3.0, 4.0]]}, {"predictions": [[0.2, 0.8], [0.9, 0.1]]})
    assert rows == [Row({}, [0.2, 0.8], positional=(1.0, 2.0)), Row({}, [0.9, 0.1], positional=(3.0, 4.0))]


def test_open_inference_protocol_tensors_are_split_into_rows_with_outputs_and_probabilities() -> None:
    request = {
        "inputs": [
            {"name": "dense", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
            {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["fr", "de"]},
        ]
    }
    reply = {
        "model_name": "m",
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]},
            {"name": "probabilities", "shape": [2, 2], "datatype": "FP32", "data": [[0.3, 0.7], [0.6, 0.4]]},
        ],
    }
    assert _parse(request, reply) == [
        Row({"country": "fr"}, 1, [0.3, 0.7], positional=(1, 2, 3)),
        Row({"country": "de"}, 0, [0.6, 0.4], positional=(4, 5, 6)),
    ]


def test_a_plain_json_object_is_one_row_and_its_reply_may_carry_probabilities() -> None:
    assert _parse({"age": 31, "city": "Lyon"}, {"prediction": "yes", "probabilities": {"yes": 0.9, "no": 0.1}}) == [
        Row({"age": 31, "city": "Lyon"}, "yes", {"yes": 0.9, "no": 0.1})
    ]


@pytest.mark.parametrize(
    "body", [b"not json", b'{"image": {"b64": "..."}}', b'{"inputs": [{"name": "x", "shape": [3], "data": [1]}]}']
)
def test_unknown_or_inconsistent_payloads_are_not_guessed(body: bytes) -> None:
    assert parse(body, b'{"predictions": [1]}') is None


def test_a_reply_whose_length_differs_keeps_the_features_without_predictions() -> None:
    assert _parse({"instances": [[1], [2]]}, {"predictions": [1]}) == [
        Row({}, positional=(1,)),
        Row({}, positional=(2,)),
    ]


def test_encoder_logs_unknown_formats_with_timing_only_and_decodes_gzip_replies() -> None:
    encoder = Encoder(FeatureFilter.of(None, ["secret"]), "3", max_body_bytes=1000)
    reply = gzip.compress(b'{"predictions": [1]}')
    known = RawCall("r", 1.0, 2.5, 200, b'{"instances": [{"x": 1, "secret": 2}]}', reply, "gzip")
    unknown = RawCall("u", 1.0, 4.0, 200, b"\x00binary", b"")
    failed = RawCall("f", 1.0, 9.0, 503, b'{"instances": [{"x": 1}]}', b"overloaded")
    records = encoder.records([known, unknown, failed])
    assert records == [
        {
            "request_id": "r",
            "timestamp": 1.0,
            "features": {"x": 1},
            "status": "ok",
            "prediction": 1,
            "latency_ms": 2.5,
            "model_version": "3",
        },
        {"request_id": "u", "timestamp": 1.0, "features": {}, "status": "ok", "latency_ms": 4.0, "model_version": "3"},
        {
            "request_id": "f",
            "timestamp": 1.0,
            "features": {"x": 1},
            "status": "error",
            "latency_ms": 9.0,
            "model_version": "3",
        },
    ]
    assert encoder.unparsed == 1


class RegisteredSchema:
    """A schema source that answers with a fixed schema and counts how often it is read."""

    def __init__(self, *names: str) -> None:
        self.schema_read = 0
        self.answer = Schema(tuple((n, "numerical") for n in names))

    def schema(self) -> Schema:
        self.schema_read += 1
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


V1_ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
V2_TENSOR = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
SPLIT_NO_COLUMNS = {"dataframe_split": {"data": [[5.1, 3.5, 1.4, 0.2]]}}
MLFLOW_INPUTS = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}


def _features(encoder: Encoder, body: object, request_id: str | None = None, reply: object = None) -> list[object]:
    call = RawCall("made-up", 1.0, 1.0, 200, json.dumps(body).encode(), json.dumps(reply).encode() if reply else b"")
    if request_id:
        call = RawCall("header-id", 1.0, 1.0, 200, call.request_body, call.response_body, id_given=True)
    return [(r["request_id"], r["features"]) for r in encoder.resolve(encoder.records([call]))]


@pytest.mark.parametrize("body", [V1_ROWS, V2_TENSOR, SPLIT_NO_COLUMNS, MLFLOW_INPUTS], ids=["v1", "v2", "split", "in"])
def test_positional_values_of_every_protocol_have_one_naming_without_a_schema(body: object) -> None:
    encoder = Encoder(FeatureFilter(), None, 10_000)
    assert _features(encoder, body) == [("made-up", {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2})]


@pytest.mark.parametrize("body", [V1_ROWS, V2_TENSOR, SPLIT_NO_COLUMNS, MLFLOW_INPUTS], ids=["v1", "v2", "split", "in"])
def test_positional_values_of_every_protocol_are_named_after_the_registered_features_in_order(body: object) -> None:
    names = Names(RegisteredSchema("sl", "sw", "pl", "pw"))
    encoder = Encoder(FeatureFilter.of(None, ["pw"]), None, 10_000, names)
    assert _features(encoder, body) == [("made-up", {"sl": 5.1, "sw": 3.5, "pl": 1.4})]


def test_tensors_named_like_registered_features_keep_their_names_and_the_rest_fill_the_others_in_order() -> None:
    body = {
        "inputs": [
            {"name": "dense", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]},
            {"name": "country", "shape": [1], "datatype": "BYTES", "data": ["fr"]},
        ]
    }
    encoder = Encoder(FeatureFilter(), None, 10_000, Names(RegisteredSchema("country", "age", "income")))
    assert _features(encoder, body) == [("made-up", {"country": "fr", "age": 1.0, "income": 2.0})]


def test_a_schema_miss_reads_the_schema_again_at_most_once_per_interval_and_learns_a_new_one() -> None:
    source, clock = RegisteredSchema(), Clock()
    encoder = Encoder(FeatureFilter(), None, 10_000, Names(source, clock=clock, refresh_interval=30.0))
    assert _features(encoder, V1_ROWS)[0][1] == {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
    source.answer = Schema(tuple((n, "numerical") for n in ("a", "b", "c", "d")))
    clock.now += 10.0
    assert "f0" in _features(encoder, V1_ROWS)[0][1]  # within the interval: not read again
    assert source.schema_read == 1
    clock.now += 30.0
    assert _features(encoder, V1_ROWS)[0][1] == {"a": 5.1, "b": 3.5, "c": 1.4, "d": 0.2}
    assert source.schema_read == 2
    _features(encoder, V1_ROWS)
    assert source.schema_read == 2  # a hit reads nothing


def test_a_v2_request_id_names_the_records_of_its_rows_over_the_header_and_the_reply_id_comes_last() -> None:
    encoder = Encoder(FeatureFilter(), None, 10_000)
    two_rows = {"id": "inf-7", "inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [1.0, 2.0]}]}
    assert [rid for rid, _ in _features(encoder, two_rows, request_id="hdr")] == ["inf-7-0", "inf-7-1"]
    no_id = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    reply = {"id": "from-reply", "outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [1]}]}
    assert [rid for rid, _ in _features(encoder, no_id, reply=reply)] == ["from-reply"]
    assert [rid for rid, _ in _features(encoder, no_id, request_id="hdr", reply=reply)] == ["header-id"]
    assert [rid for rid, _ in _features(encoder, {"id": "not-v2", "x": 1})] == ["made-up"]


def test_hugging_face_text_classification_gives_the_text_and_the_top_label_with_every_score() -> None:
    every = [{"label": "NEGATIVE", "score": 0.1}, {"label": "POSITIVE", "score": 0.9}]
    one = _parse({"inputs": "great film", "parameters": {"top_k": None}}, every)
    assert one == [Row({}, "POSITIVE", {"NEGATIVE": 0.1, "POSITIVE": 0.9}, positional=("great film",))]
    nested = _parse({"inputs": "great film"}, [every])  # the Inference API nests the labels per input
    assert nested == one
    top = _parse(
        {"inputs": ["great", "awful"]}, [{"label": "POSITIVE", "score": 0.8}, {"label": "NEGATIVE", "score": 0.7}]
    )
    assert top == [
        Row({}, "POSITIVE", {"POSITIVE": 0.8}, positional=("great",)),
        Row({}, "NEGATIVE", {"NEGATIVE": 0.7}, positional=("awful",)),
    ]
    pair = _parse({"inputs": {"text": "a", "text_pair": "b"}}, [{"label": "entailment", "score": 0.6}])
    assert pair == [Row({"text": "a", "text_pair": "b"}, "entailment", {"entailment": 0.6})]


def test_hugging_face_zero_shot_replies_give_the_best_label() -> None:
    reply = {"sequence": "x", "labels": ["sports", "politics"], "scores": [0.3, 0.7]}
    assert _parse({"inputs": "x", "parameters": {"candidate_labels": ["sports", "politics"]}}, reply) == [
        Row({}, "politics", {"sports": 0.3, "politics": 0.7}, positional=("x",))
    ]


def test_tf_serving_columnar_replies_and_named_outputs_give_predictions_and_scores() -> None:
    columnar = {"signature_name": "serving_default", "inputs": {"a": [1, 3], "b": [2, 4]}}
    assert _parse(columnar, {"outputs": [0, 1]}) == [Row({"a": 1, "b": 2}, 0), Row({"a": 3, "b": 4}, 1)]
    named = _parse(columnar, {"outputs": {"classes": [0, 1], "scores": [[0.9, 0.1], [0.2, 0.8]]}})
    assert named == [Row({"a": 1, "b": 2}, 0, [0.9, 0.1]), Row({"a": 3, "b": 4}, 1, [0.2, 0.8])]
    rows = _parse({"instances": [[1, 2]]}, {"predictions": [{"classes": 1, "scores": [0.3, 0.7]}]})
    assert rows == [Row({}, 1, [0.3, 0.7], positional=(1, 2))]
