"""Sample levels: the index finds every row a sample needs, among at most twice as many."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.store.queries import _level_for
from monitor.store.schema import SAMPLE_LEVELS, sample_level

keys = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
fractions = st.floats(min_value=2.0**-60, max_value=1.0)


@given(keys, st.integers(min_value=0, max_value=SAMPLE_LEVELS))
def test_a_level_is_reached_exactly_by_the_keys_below_its_share(key: float, level: int) -> None:
    assert (sample_level(key) >= level) == (key < 2.0**-level)


@given(keys, fractions)
def test_the_level_for_a_fraction_keeps_every_key_below_it(key: float, fraction: float) -> None:
    level = _level_for(fraction)
    if key < fraction:
        assert sample_level(key) >= level
    assert fraction <= 2.0**-level < 2 * fraction  # the index reads less than twice the sample
