"""mlwatch's per-feature verdicts, on a bounded sample, agree with Evidently's DataDriftPreset on the full window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.drift.check import evaluate
from monitor.drift.loaded import Reference
from monitor.drift.reference import column_stats
from monitor.drift.window import WindowSample
from monitor.records import Feature, Service

# chi-square on a category the reference never had divides by zero (in Evidently and here alike)
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")

WORDS_A = ["loan", "credit", "income", "salary", "bank", "account", "payment", "rate", "term", "balance"]
WORDS_B = ["football", "match", "goal", "team", "player", "score", "league", "coach", "season", "stadium"]


def _dataset(rows: int, seed: int, shift: float, *, text: bool = False) -> pd.DataFrame:
    """Six numerical and three categorical columns; ``shift`` moves half of them, by a different recipe each."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(6):
        moved = shift if i % 2 else 0.0
        data[f"num{i}"] = rng.normal(moved, 1 + moved * (i == 5), rows) if i != 3 else rng.exponential(1 + moved, rows)
    for i in range(3):
        weights = np.array([0.5, 0.3, 0.2]) + (np.array([-1, 0.5, 0.5]) * shift * 0.4 if i == 1 else 0)
        data[f"cat{i}"] = rng.choice(["a", "b", "c"], rows, p=weights / weights.sum())
    data["small_int"] = rng.integers(0, 4 + (shift > 0.5), rows)  # few values: JS / chi-square / z
    if text:
        vocabulary = WORDS_B if shift > 0.5 else WORDS_A
        data["note"] = [" ".join(rng.choice(vocabulary, 6)) for _ in range(rows)]
    return pd.DataFrame(data)


def _service(frame: pd.DataFrame) -> Service:
    def kind(name: str) -> str:
        return "categorical" if name.startswith("cat") else "text" if name == "note" else "numerical"

    features = tuple(Feature(str(c), kind(str(c))) for c in frame.columns)
    return Service(1, "agreement", "classification", None, None, features)


def _mlwatch(service: Service, reference: pd.DataFrame, window: pd.DataFrame, sample: int) -> dict[str, bool]:
    rows = window.sample(min(sample, len(window)), random_state=1).reset_index(drop=True)
    none = pd.Series([None] * len(rows), dtype=object)
    sample_ = WindowSample(rows, none, none, np.zeros(len(rows), dtype=bool), None, None)
    found = evaluate(service, sample_, Reference(reference, column_stats(reference, service)))
    return {f.name: f.drifted for f in found.features}


def _preset(service: Service, reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    kinds = {f.name: f.type for f in service.features}
    definition = DataDefinition(
        numerical_columns=[c for c, k in kinds.items() if k == "numerical"],
        categorical_columns=[c for c, k in kinds.items() if k == "categorical"],
        text_columns=[c for c, k in kinds.items() if k == "text"],
    )
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(window, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    prefix = "Value Drift for column "
    return {
        t["name"][len(prefix) :]: t["status"].value == "FAIL"
        for t in snapshot.dict()["tests"]
        if t["name"].startswith(prefix)
    }


# (reference rows, window rows, sample rows, text column): large references pick Wasserstein and
# Jensen-Shannon, references of at most 1000 rows pick KS, chi-square and z tests.
DATASETS = [(5000, 8000, 4000, False), (800, 4000, 2000, False), (3000, 3000, 3000, True)]


@pytest.mark.parametrize(("reference_rows", "window_rows", "sample_rows", "text"), DATASETS)
def test_verdicts_agree_with_data_drift_preset_across_shift_sizes(
    reference_rows: int, window_rows: int, sample_rows: int, text: bool
) -> None:
    agree = total = 0
    disagreements = []
    drifted_seen = set()
    for shift in (0.0, 0.35, 1.0):
        reference = _dataset(reference_rows, seed=10, shift=0.0, text=text)
        window = _dataset(window_rows, seed=11 + int(shift * 10), shift=shift, text=text)
        service = _service(reference)
        ours, theirs = _mlwatch(service, reference, window, sample_rows), _preset(service, reference, window)
        assert set(ours) == set(theirs)
        for name, verdict in theirs.items():
            total += 1
            agree += ours[name] == verdict
            if ours[name] != verdict:
                disagreements.append((shift, name, ours[name], verdict))
            if verdict:
                drifted_seen.add(shift)
    assert agree / total >= 0.95, disagreements
    assert drifted_seen >= {0.35, 1.0}  # the shifts are visible at all, so agreement is not "nothing drifts"


def test_text_feature_drifts_when_its_vocabulary_changes_and_not_otherwise() -> None:
    reference = _dataset(1500, seed=20, shift=0.0, text=True)[["note"]]
    service = _service(reference)
    same = _mlwatch(service, reference, _dataset(1500, seed=21, shift=0.0, text=True)[["note"]], 1500)
    changed = _mlwatch(service, reference, _dataset(1500, seed=22, shift=1.0, text=True)[["note"]], 1500)
    assert (same, changed) == ({"note": False}, {"note": True})
