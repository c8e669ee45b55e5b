"""Features and predictions parsed out of the payloads of common model servers."""

from __future__ import annotations

import gzip
import json

import pytest

from monitor.sdk.calls import Encoder, FeatureFilter, RawCall
from monitor.sdk.payloads import Row, parse


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


def test_tf_serving_row_lists_become_positional_features_and_vector_predictions_stay_lists() -> None:
    rows = _parse({"instances": [[1.0, 2.0], [3.0, 4.0]]}, {"predictions": [[0.2, 0.8], [0.9, 0.1]]})
    assert rows == [Row({"f0": 1.0, "f1": 2.0}, [0.2, 0.8]), Row({"f0": 3.0, "f1": 4.0}, [0.9, 0.1])]


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
        Row({"dense_0": 1, "dense_1": 2, "dense_2": 3, "country": "fr"}, 1, [0.3, 0.7]),
        Row({"dense_0": 4, "dense_1": 5, "dense_2": 6, "country": "de"}, 0, [0.6, 0.4]),
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
    assert _parse({"instances": [[1], [2]]}, {"predictions": [1]}) == [Row({"f0": 1}), Row({"f0": 2})]


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
