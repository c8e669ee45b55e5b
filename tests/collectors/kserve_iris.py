"""A KServe model server (the real ``kserve`` package) with a scikit-learn iris classifier that
answers TensorFlow Serving's REST API, which KServe's V1 protocol is:

    POST /v1/models/iris:predict
    {"signature_name": ..., "instances": [[...], ...] or [{"sepal_length": ...}, ...]}  (row format)
        -> {"predictions": [{"classes": 2, "scores": [...]}, ...]}
    {"signature_name": ..., "inputs": {"sepal_length": [...], ...} or [[...], ...]}       (columnar)
        -> {"outputs": {"classes": [...], "scores": [[...], ...]}}

Run with the interpreter of the KServe environment (``make .venv-kserve``), which cannot share
the project's (KServe pins older psutil, starlette and httpx):

    .venv-kserve/bin/python tests/collectors/kserve_iris.py --http_port 8080
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class Iris(kserve.Model):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("iris")
        data = load_iris()
        self.model = LogisticRegression(max_iter=1000).fit(data.data, data.target)
        self.ready = True

    def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        columnar = "inputs" in payload
        given = payload["inputs"] if columnar else payload["instances"]
        if isinstance(given, dict):  # columnar, named: one list per feature
            rows = [list(values) for values in zip(*(given[name] for name in FEATURES), strict=True)]
        else:
            rows = [[row[name] for name in FEATURES] if isinstance(row, dict) else row for row in given]
        classes = [int(c) for c in self.model.predict(rows)]
        scores = [[round(float(p), 6) for p in ps] for ps in self.model.predict_proba(rows)]
        if columnar:
            return {"outputs": {"classes": classes, "scores": scores}}
        return {"predictions": [{"classes": c, "scores": s} for c, s in zip(classes, scores, strict=True)]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http_port", type=int, required=True)
    port = parser.parse_args().http_port
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([Iris()])
