"""The derived verdicts of a text feature: its descriptors and, when enabled, its embeddings.

What they are is in ``monitor.drift.text`` and ``monitor.drift.embeddings``; this module
tests them against a loaded reference, whose side (vocabulary, descriptors, embeddings) is
computed once and kept with it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from monitor.config import TextConfig
from monitor.drift.embeddings import Embedder, EmbeddingsUnavailable, embedding_drift
from monitor.drift.loaded import Reference
from monitor.drift.multivariate import capped
from monitor.drift.stattests import DriftSpec, column_drift, prepare, prepare_reference
from monitor.drift.summary import ColumnDrift
from monitor.drift.text import DESCRIPTORS, derived_name, descriptors, vocabulary

Found = tuple[list[ColumnDrift], dict[str, str]]
"""Derived verdicts, and why each derived feature that has none could not be tested."""


def text_drift(
    feature: str, reference: Reference, current: pd.Series, settings: TextConfig, embedder: Embedder
) -> Found:
    """The derived verdicts of text feature ``feature``; ``current`` is the window's prepared texts."""
    texts = reference.column(feature, "text")
    if texts is None or texts.empty or current.empty:
        return [], {}
    found: list[ColumnDrift] = []
    skipped: dict[str, str] = {}
    if settings.descriptors:
        found += descriptor_drift(feature, reference, texts, current)
    if settings.embeddings:
        try:
            found.append(_embeddings(feature, reference, texts, current, settings, embedder))
        except EmbeddingsUnavailable as exc:
            skipped[derived_name(feature, "embeddings")] = str(exc)
    return found, skipped


def descriptor_drift(feature: str, reference: Reference, texts: pd.Series, current: pd.Series) -> list[ColumnDrift]:
    """Length, out-of-vocabulary share and non-letter share of the window's texts against the reference's."""
    known, columns = reference.kept(("text-descriptors", feature), lambda: _reference_side(texts))
    measured = descriptors(current, known)
    found = []
    for descriptor in DESCRIPTORS:
        spec = DriftSpec(derived_name(feature, descriptor), "numerical")
        values = prepare(measured[descriptor], "numerical")
        if columns[descriptor].empty or values.empty:
            continue  # e.g. no text of one side has a word: a share without a denominator
        drift = column_drift(spec, columns[descriptor], values, reference.test(spec, columns[descriptor], values))
        if drift is not None:
            found.append(replace(drift, derived_from=feature))
    return found


def _reference_side(texts: pd.Series) -> tuple[frozenset[str], dict[str, pd.Series]]:
    """The vocabulary, and the reference's descriptors to compare with.

    The vocabulary is the words of a random half of the reference, and the reference's own
    out-of-vocabulary shares are those of the other half: measured against a vocabulary that
    includes them they would all be 0, and any window would drift.
    """
    order = np.random.default_rng(0).permutation(len(texts))
    known = vocabulary(texts.iloc[order[::2]])
    measured = descriptors(texts, known)
    measured["oov_share"] = descriptors(texts.iloc[order[1::2]], known)["oov_share"]
    return known, {d: prepare_reference(measured[d], "numerical") for d in DESCRIPTORS}


def _embeddings(
    feature: str, reference: Reference, texts: pd.Series, current: pd.Series, settings: TextConfig, embedder: Embedder
) -> ColumnDrift:
    rows = settings.embedding_rows
    key = ("text-embeddings", feature, rows)
    kept = reference.kept(key, lambda: embedder.encode(_sample(texts, rows)))
    return embedding_drift(feature, kept, embedder.encode(_sample(current, rows)), settings.embedding_method)


def _sample(texts: pd.Series, rows: int) -> list[str]:
    return [str(t) for t in capped(texts.to_frame(), rows).iloc[:, 0]]
