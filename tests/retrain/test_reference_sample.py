"""A new version's reference is the population it was trained on, weights included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrain.data import WEIGHT
from retrain.runner import reference_sample


def test_down_weighted_reference_rows_are_rare_in_the_new_reference() -> None:
    old = pd.DataFrame({"x": np.zeros(5000), WEIGHT: 0.1})
    new = pd.DataFrame({"x": np.ones(4000), WEIGHT: 1.0})
    sample = reference_sample(pd.concat([old, new], ignore_index=True))
    assert WEIGHT not in sample.columns
    old_share = float((sample["x"] == 0).mean())
    assert 0.08 < old_share < 0.14  # 500 of 4500 units of weight


def test_equal_weights_keep_the_training_rows_as_they_are() -> None:
    train = pd.DataFrame({"x": np.arange(100.0), WEIGHT: 1.0})
    sample = reference_sample(train)
    assert sorted(sample["x"]) == list(np.arange(100.0))
