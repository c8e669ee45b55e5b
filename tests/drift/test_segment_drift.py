"""The per-segment drift tests computed on numpy arrays give Evidently's own scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.drift.segment_drift import PreparedColumn, drifted, jensenshannon, prepared_columns, wasserstein_norm
from monitor.drift.stattests import DriftSpec, choose, column_drift, prepare_reference
from monitor.drift.summary import ColumnDrift
from monitor.records import Feature, Service

SERVICE = Service(1, "shop", "classification", None, None, (Feature("x"), Feature("city", "categorical")))


def _evidently(name: str, kind: str, reference: pd.Series, current: pd.Series) -> float:
    spec = DriftSpec(name, kind)
    base = prepare_reference(reference, kind)
    found = column_drift(spec, base, current, choose(spec, base, current))
    assert found is not None
    return found.score


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_wasserstein_on_arrays_matches_evidentlys(shift: float) -> None:
    rng = np.random.default_rng(1)
    reference, current = pd.Series(rng.normal(0, 2, 3000)), pd.Series(rng.normal(shift, 2, 700))
    ours = wasserstein_norm(np.sort(reference.to_numpy()), np.sort(current.to_numpy()))
    assert ours == pytest.approx(_evidently("x", "numerical", reference, current), rel=1e-9)


def test_jensenshannon_on_codes_matches_evidentlys_with_categories_on_one_side_only() -> None:
    rng = np.random.default_rng(2)
    reference = pd.Series(rng.choice(["paris", "lyon", "nice", "lille", "brest"], 3000, p=[0.4, 0.3, 0.2, 0.05, 0.05]))
    current = pd.Series(rng.choice(["paris", "lyon", "nice", "oslo"], 800, p=[0.2, 0.3, 0.3, 0.2]))
    codes, uniques = pd.factorize(current)
    counts = {str(k): int(n) for k, n in reference.value_counts().items()}
    ours = jensenshannon(counts, [str(u) for u in uniques], np.bincount(codes, minlength=len(uniques)))
    assert ours == pytest.approx(_evidently("city", "categorical", reference, current), rel=1e-9)


def test_a_segments_verdict_takes_the_rows_its_mask_selects() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": np.r_[rng.normal(0, 1, 2000), rng.normal(3, 1, 2000)]})
    tested = [ColumnDrift("x", "numerical", "wasserstein", 0.0, 0.1, False)]
    [column] = list(prepared_columns(SERVICE, frame, tested, skip=()))
    assert isinstance(column, PreparedColumn)
    base = prepare_reference(pd.Series(rng.normal(0, 1, 5000)), "numerical")
    test = choose(column.spec, base, pd.Series(column.values[:1]))
    first, second = np.arange(4000) < 2000, np.arange(4000) >= 2000
    assert not drifted(column, test, base, {}, column.values[first[column.positions]])
    assert drifted(column, test, base, {}, column.values[second[column.positions]])
