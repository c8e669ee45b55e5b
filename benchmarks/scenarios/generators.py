"""The scenario suite's populations: the demo's credit applicants (``monitor.demo.data``) with
covariate shift and concept change on schedules of their own.

A ``Population`` is a ``TrafficSource``: asked for ``n`` rows at ``t`` windows since traffic
started, it draws applicants from ``CreditData`` at covariate drift ``covariate(t)`` and labels
them by the concept at ``concept(t)``. Both are in [0, 1]; 0 is the training population and its
concept, 1 the demo's fully drifted one (lower incomes, higher utilization and debt, a new
``online`` region; income matters less, utilization more, age and business loans flip sign).
Keeping the two apart is what lets a scenario change the concept with covariates unchanged, or
move the covariates while the labels keep following the training rule.

The demo's concept lowers its intercept as it changes, to offset the riskier drifted
population; on the training population that would make defaults rare (2% instead of 25%) and
a model that predicts "no default" everywhere right. ``keep_rate`` adds the intercept back
(``KEEP_RATE_SHIFT`` per unit of concept, measured to keep the rate at 25% with covariates at
0), so that a concept change alone moves who defaults, not how many: the first model's
accuracy falls from 84% to 76% and a model trained on the new concept reaches 84% again.

Every draw is seeded from the population's ``seed`` and the traffic's own per-batch seed, so a
run with the same seed sends the same rows.

Schedules (functions of ``t`` in windows):

- ``Never``: always 0.
- ``Step(at, size)``: 0 before ``at``, ``size`` from it on (a sudden change).
- ``Ramp(start, length)``: 0 before ``start``, rising linearly to 1 over ``length`` windows.
- ``Seasonal(start, period)``: 0 before ``start``, then ``sin^2(pi (t - start) / period)``: a
  high season peaking at ``start + period / 2`` and back to 0 at ``start + period``, recurring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from monitor.demo.data import TARGET, CreditData

KEEP_RATE_SHIFT = 1.8


class Schedule(Protocol):
    """How large a change is ``t`` windows in, in [0, 1]."""

    def __call__(self, t: float) -> float:
        """The change at ``t``."""
        ...


@dataclass(frozen=True)
class Never:
    """No change at any time."""

    def __call__(self, t: float) -> float:
        """Always 0."""
        return 0.0


@dataclass(frozen=True)
class Step:
    """A sudden change of ``size`` at ``at`` windows."""

    at: float
    size: float = 1.0

    def __call__(self, t: float) -> float:
        """0 before ``at``, ``size`` from then on."""
        return self.size if t >= self.at else 0.0


@dataclass(frozen=True)
class Ramp:
    """A gradual change from ``start``, complete ``length`` windows later."""

    start: float
    length: float

    def __call__(self, t: float) -> float:
        """0 before ``start``, then linear up to 1."""
        return min(1.0, max(0.0, (t - self.start) / self.length))


@dataclass(frozen=True)
class Seasonal:
    """A season that comes back every ``period`` windows from ``start`` on."""

    start: float
    period: float

    def __call__(self, t: float) -> float:
        """0 before ``start``, then ``sin^2(pi (t - start) / period)``."""
        return 0.0 if t < self.start else math.sin(math.pi * (t - self.start) / self.period) ** 2


@dataclass(frozen=True)
class Population:
    """Credit applicants whose covariates and concept follow two schedules."""

    covariate: Schedule = field(default_factory=Never)
    concept: Schedule = field(default_factory=Never)
    seed: int = 0
    keep_rate: bool = False

    def sample(self, n: int, t: float, *, seed: int) -> pd.DataFrame:
        """``n`` rows at ``t`` windows: features at ``covariate(t)``, labels by ``concept(t)``."""
        data, mixed = CreditData(seed=self.seed), self.seed * 1_000_003 + seed
        concept = self.concept(t)
        frame = data.sample(n, self.covariate(t), seed=mixed, concept=concept)
        if self.keep_rate and concept > 0:
            frame[TARGET] = self._rate_kept(frame, concept, np.random.default_rng([mixed, 1]))
        return frame

    @staticmethod
    def _rate_kept(frame: pd.DataFrame, concept: float, rng: np.random.Generator) -> np.ndarray:
        """Labels by ``concept`` with ``KEEP_RATE_SHIFT * concept`` added back to its intercept."""
        p = np.clip(CreditData.default_probability(frame, concept), 1e-12, 1 - 1e-12)
        z = np.log(p / (1 - p)) / 2.2 + KEEP_RATE_SHIFT * concept  # 2.2: the demo's logistic scale
        return (rng.random(len(frame)) < 1 / (1 + np.exp(-2.2 * z))).astype(int)

    def draw(self, n: int, times: list[float], *, seed: int) -> pd.DataFrame:
        """``n`` rows spread evenly over ``times`` (fresh draws, e.g. an oracle's training data)."""
        per = max(1, n // len(times))
        return pd.concat(
            [self.sample(per, t, seed=seed + i) for i, t in enumerate(times)],
            ignore_index=True,
        )
