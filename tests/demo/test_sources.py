"""The demo's rows come from a pluggable source; by default, the stable-then-ramp timeline."""

from __future__ import annotations

import pandas as pd

from monitor.demo.data import CreditData
from monitor.demo.traffic import Timeline, TimelineSource


def test_the_default_source_is_the_timeline_in_seconds_asked_in_windows() -> None:
    source = TimelineSource(Timeline(stable=20.0, ramp=20.0), CreditData(seed=7), window=10.0)
    at_three_windows = source.sample(200, 3.0, seed=5)  # 30 s: half way up the ramp
    pd.testing.assert_frame_equal(at_three_windows, CreditData(seed=7).sample(200, 0.5, seed=5))


def test_credit_data_labels_by_the_concept_asked_for_on_unchanged_applicants() -> None:
    data = CreditData(seed=1)
    plain, relabelled = data.sample(5000, 0.0, seed=2), data.sample(5000, 0.0, seed=2, concept=1.0)
    pd.testing.assert_frame_equal(plain.drop(columns="default"), relabelled.drop(columns="default"))
    assert (plain["default"] != relabelled["default"]).mean() > 0.1
    pd.testing.assert_frame_equal(data.sample(100, 0.4, seed=3), data.sample(100, 0.4, seed=3, concept=0.4))
