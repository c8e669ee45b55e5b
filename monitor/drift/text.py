"""Text descriptors: numbers about each text that per-feature numerical tests can compare.

A text feature ``review`` gets three derived features, tested like any numerical one
(Evidently's stattests and default test selection) and reported as ``review:length``,
``review:oov_share`` and ``review:non_letter_share``:

- ``length``: characters;
- ``oov_share``: the share of its words that no reference text of that feature has (the
  vocabulary is the reference's lower-cased words); a change of topic or language shows here;
- ``non_letter_share``: the share of its non-space characters that are not letters (digits,
  punctuation, symbols, markup); a text turning into codes or templates shows here.

Derived features are verdicts of their own: they do not count in the drift share, which stays
the share of model inputs that drifted.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DESCRIPTORS = ("length", "oov_share", "non_letter_share")
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters, in any script


def derived_name(feature: str, descriptor: str) -> str:
    """The name a derived feature is reported under: ``review:length``."""
    return f"{feature}:{descriptor}"


def vocabulary(texts: pd.Series) -> frozenset[str]:
    """The lower-cased words of ``texts``."""
    return frozenset(word for text in texts for word in _words(text))


def descriptors(texts: pd.Series, known: frozenset[str]) -> pd.DataFrame:
    """One row per text (``texts`` prepared as text, no missing values), one column per descriptor;
    NaN where a share has no denominator (a text without words or without characters)."""
    return pd.DataFrame(
        {
            "length": texts.str.len().astype(float),
            "oov_share": [_oov_share(text, known) for text in texts],
            "non_letter_share": [_non_letter_share(text) for text in texts],
        },
        index=texts.index,
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _oov_share(text: str, known: frozenset[str]) -> float:
    words = _words(text)
    return sum(word not in known for word in words) / len(words) if words else np.nan


def _non_letter_share(text: str) -> float:
    visible = [c for c in text if not c.isspace()]
    return sum(not c.isalpha() for c in visible) / len(visible) if visible else np.nan
