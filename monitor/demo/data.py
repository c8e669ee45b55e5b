"""A documented generator of realistic credit-default data, with drift on demand.

Eight applicant features, loosely modelled on public credit-scoring data sets:

| feature | type | distribution before drift |
|---|---|---|
| age | numerical | normal(42, 11), clipped to 18..80 |
| income | numerical | lognormal: median 42,000 |
| debt_ratio | numerical | beta(2, 5) |
| utilization | numerical | beta(2, 3) (share of credit lines used) |
| credit_lines | numerical | poisson(6) |
| months_employed | numerical | exponential(mean 60), clipped to 0..480 |
| region | categorical | north 35%, south 30%, east 20%, west 15% |
| purpose | categorical | car 30%, home 25%, education 20%, business 25% |

The label ``default`` (1 = defaulted) is drawn from a logistic model of those features.
``drift`` in [0, 1] moves the population gradually: incomes fall by up to 35%,
utilization and debt ratios rise, a new region ``online`` appears (up to 30%), and the
concept changes while the default rate stays near a fifth to a quarter: income matters less,
utilization more, older applicants default more instead of less, and business loans
turn from riskier to safer. At ``drift=0`` it is the training population.

``concept`` moves the concept alone: ``sample(n, drift, concept=c)`` draws the population of
``drift`` and labels it by the concept of ``c`` (by default the same as ``drift``), so that
covariate shift and concept change can be had apart. Anything with ``sample(n, t, *, seed)``
(``TrafficSource``) can feed the demo's traffic instead, ``t`` being windows since it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

FEATURES: tuple[tuple[str, str], ...] = (
    ("age", "numerical"),
    ("income", "numerical"),
    ("debt_ratio", "numerical"),
    ("utilization", "numerical"),
    ("credit_lines", "numerical"),
    ("months_employed", "numerical"),
    ("region", "categorical"),
    ("purpose", "categorical"),
)
TARGET = "default"
_REGIONS = np.array(["north", "south", "east", "west", "online"])
_PURPOSES = np.array(["car", "home", "education", "business"])


class TrafficSource(Protocol):
    """What the demo's traffic draws its rows from: features and the ``default`` label."""

    def sample(self, n: int, t: float, *, seed: int) -> pd.DataFrame:
        """``n`` rows of the population ``t`` windows (production hours) after traffic started."""
        ...


@dataclass(frozen=True)
class CreditData:
    """Draws applicants and their outcomes; ``drift`` shifts inputs and the concept."""

    seed: int = 0

    def sample(
        self, n: int, drift: float = 0.0, *, seed: int | None = None, concept: float | None = None
    ) -> pd.DataFrame:
        """``n`` rows with the features of ``drift`` and the ``default`` label of ``concept`` (default: ``drift``)."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        frame = self._features(rng, n, drift)
        labelled_by = drift if concept is None else concept
        frame[TARGET] = (rng.random(n) < self.default_probability(frame, labelled_by)).astype(int)
        return frame

    def _features(self, rng: np.random.Generator, n: int, drift: float) -> pd.DataFrame:
        region_p = np.array([0.35, 0.30, 0.20, 0.15, 0.0]) * (1 - 0.3 * drift)
        region_p[4] = 0.3 * drift
        return pd.DataFrame(
            {
                "age": np.clip(rng.normal(42 - 6 * drift, 11, n), 18, 80).round(),
                "income": np.round(rng.lognormal(np.log(42_000 * (1 - 0.35 * drift)), 0.45, n), -2),
                "debt_ratio": rng.beta(2 + 2 * drift, 5, n).round(3),
                "utilization": rng.beta(2 + 2.5 * drift, 3, n).round(3),
                "credit_lines": rng.poisson(6, n).astype(float),
                "months_employed": np.clip(rng.exponential(60 * (1 - 0.4 * drift), n), 0, 480).round(),
                "region": rng.choice(_REGIONS, n, p=region_p / region_p.sum()),
                "purpose": rng.choice(_PURPOSES, n, p=[0.30, 0.25, 0.20, 0.25]),
            }
        )

    @staticmethod
    def default_probability(frame: pd.DataFrame, drift: float = 0.0) -> np.ndarray:
        """The true probability of default under the concept at ``drift``."""
        z = (
            -1.0
            - 1.6 * drift
            - (1.6 - 0.8 * drift) * (np.log(frame["income"]) - np.log(42_000))
            + 3.0 * (frame["debt_ratio"] - 0.29)
            + (2.5 + 1.5 * drift) * (frame["utilization"] - 0.4)
            - (0.035 - 0.06 * drift) * (frame["age"] - 42)
            - 0.004 * (frame["months_employed"] - 60)
            + (0.4 - 0.8 * drift) * (frame["purpose"] == "business")
            + 0.6 * drift * (frame["region"] == "online")
        )
        return np.asarray(1 / (1 + np.exp(-2.2 * z)))
