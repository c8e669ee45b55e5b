"""References as checks use them: loaded once per process, with derived state kept.

What a check derives from a reference (its columns cleaned and sorted for the stattests,
Evidently's test choice per column, the calibration of probabilities) is computed on
first use and kept with it; ``ReferenceCache`` keeps the last few references, keyed by
upload time, so a new upload is picked up at the next check.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pandas as pd

from monitor.drift.estimate import Calibrator, fit_calibrator
from monitor.drift.quality import reference_outcomes
from monitor.drift.stattests import DriftSpec, StatTest, choice_is_fixed, choose, prepare_reference
from monitor.records import Service
from monitor.store import Store

T = TypeVar("T")


@dataclass
class Reference:
    """A loaded reference with what checks derive from it, computed once per process."""

    frame: pd.DataFrame
    stats: dict[str, Any]
    version: str = ""  # the model version it is stored under ('' = any)
    _columns: dict[tuple[str, str], pd.Series] = field(default_factory=dict)
    _tests: dict[DriftSpec, StatTest] = field(default_factory=dict)
    _calibrator: tuple[Calibrator | None] | None = None
    _kept: dict[Hashable, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows of reference data."""
        return len(self.frame)

    def baseline(self, model_version: str | None) -> dict[str, float] | None:
        """Quality to compare with: the reference's own, else the first labelled window of that version."""
        own: dict[str, float] | None = self.stats.get("baseline")
        return own or self.stats.get("baselines", {}).get(model_version or "")

    def column(self, name: str, kind: str) -> pd.Series | None:
        """The column prepared for its stattest (cached), or None if the reference lacks it."""
        if name not in self.frame.columns:
            return None
        if (name, kind) not in self._columns:
            self._columns[(name, kind)] = prepare_reference(self.frame[name], kind)
        return self._columns[(name, kind)]

    def test(self, spec: DriftSpec, reference: pd.Series, current: pd.Series) -> StatTest:
        """Evidently's test for this column, kept when the current data cannot change the choice."""
        if spec in self._tests:
            return self._tests[spec]
        if not choice_is_fixed(spec, reference):
            return choose(spec, reference, current)
        # The choice does not depend on the current data: let Evidently make it on the reference alone.
        self._tests[spec] = choose(spec, reference, current.iloc[:1])
        return self._tests[spec]

    def kept(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, computed on first use of ``key`` and kept with this reference (a fitted
        multivariate detector, a text feature's vocabulary and embeddings)."""
        if key not in self._kept:
            self._kept[key] = make()
        return cast(T, self._kept[key])

    def calibrator(self, service: Service) -> Calibrator | None:
        """Isotonic calibration of P(class 1) fitted on the reference (binary classifiers)."""
        if self._calibrator is None:
            self._calibrator = (fit_calibrator(reference_outcomes(self.frame, service)),)
        return self._calibrator[0]


class ReferenceCache:
    """The last few references used, keyed by service, model version and upload time."""

    def __init__(self, store: Store, size: int = 8) -> None:
        self.store = store
        self.size = size
        self._items: OrderedDict[tuple[int, str, float], Reference] = OrderedDict()

    def get(self, service: Service, model_version: str | None) -> Reference:
        """The reference for ``model_version`` (else the any-version one); NotFound if none.

        The statistics are re-read each time (a small row) so that baselines recorded by
        other workers are seen; the data is loaded only when the reference changed.
        """
        info = self.store.reference_info(service, model_version)
        if info is None:
            self.store.get_reference(service, model_version)  # raises NotFound with the full message
        assert info is not None
        key = (service.id, info.model_version, info.created_at)
        if key not in self._items:
            frame, stats = self.store.get_reference(service, info.model_version)
            self._items[key] = Reference(frame, stats, info.model_version)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        else:
            self._items[key].stats = self.store.reference_stats(service, info.model_version)
        self._items.move_to_end(key)
        return self._items[key]
