"""The scenarios: each a population story, when it starts, and what the loop should do about it.

Times are in windows (production hours; ``window`` in the demo's configuration). Every
scenario has ``STABLE`` windows like the training data first, so that the first model's
baseline is measured, and runs ``WINDOWS`` windows in all.

- ``concept_sudden``: the concept flips at once, covariates exactly as trained, the default
  rate kept at a quarter (``Population.keep_rate``); only labels show it. The loop should
  catch the decay, retrain once on post-change rows, promote, and come within 3 points of the
  oracle.
- ``ramp_concept``: covariates and concept ramp together over 2 windows (the demo's story).
- ``covariate_only``: the covariates shift at once; labels keep following the training rule.
  Drift should alert; nothing should be promoted (drift alone does not retrain by default).
- ``seasonal``: the covariates go through a high season every 4 windows; the concept never
  changes. Each season should alert; nothing should be promoted.
- ``delayed_labels``: ``ramp_concept`` with labels 2 windows after the prediction: drift has
  to find it before any label can.
- ``worse_challenger``: nothing changes; at the onset the team switches the retrain policy to
  a one-split decision tree, restarts the worker and asks for a retrain. The gate must refuse it.
- ``canary_errors``: nothing changes; at the onset an operator starts, as a canary on 20% of
  the requests, a version that fails every request (``benchmarks.scenarios.canary``). Its
  requests must be answered by the champion (no client errors beyond the canary's share,
  none with the fallback) and the canary rolled back within 1 window.
- ``canary_slow``: the same with a version that answers as the champion does after 250 ms;
  rolled back on its latency within 1 window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.scenarios.generators import Never, Population, Ramp, Seasonal, Step

STABLE = 3.0
WINDOWS = 10.0
RETRAINING_SPEED = 120.0
"""The speed of the scenarios whose loop retrains: a retrain job's fixed 30-45 s of wall time
(a child process, training, MLflow logging, scoring both models) is 2-3 windows at 240 and
1-1.5 at 120, where in production hours it is a minute of a one-hour window."""
WEAK_CHALLENGER = {"estimator": "decision_tree", "estimator_params": {"max_depth": 1}}


@dataclass(frozen=True)
class Scenario:
    """One story the suite replays through the real processes."""

    name: str
    summary: str
    population: Callable[[int], Population]  # from the run's seed
    onset: float = STABLE
    concept_changes: bool = False
    label_delay: float = 0.25  # windows between a prediction and its label
    windows: float = WINDOWS
    challenger_params: dict[str, Any] | None = None
    """Retrain params switched to at the onset, followed by a manual retrain request."""
    canary: str | None = None
    """A faulty version started as a canary at the onset: ``errors`` or ``slow``."""
    speed: float = 240.0
    """Time compression (a window lasts ``3600 / speed`` seconds) unless ``--speed`` says otherwise."""
    not_run: str | None = None


def _ramp(seed: int) -> Population:
    return Population(covariate=Ramp(STABLE, 2.0), concept=Ramp(STABLE, 2.0), seed=seed)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "concept_sudden",
        "concept changes at once, covariates unchanged",
        lambda seed: Population(concept=Step(STABLE), seed=seed, keep_rate=True),
        concept_changes=True,
        speed=RETRAINING_SPEED,
    ),
    Scenario(
        "ramp_concept",
        "covariates and concept ramp together over 2 windows",
        _ramp,
        concept_changes=True,
        speed=RETRAINING_SPEED,
    ),
    Scenario(
        "covariate_only",
        "covariates shift at once, concept unchanged",
        lambda seed: Population(covariate=Step(STABLE), seed=seed),
    ),
    Scenario(
        "seasonal",
        "covariates go through a season every 4 windows, concept unchanged",
        lambda seed: Population(covariate=Seasonal(STABLE, 4.0), seed=seed),
    ),
    Scenario(
        "delayed_labels",
        "ramp_concept with labels 2 windows late",
        _ramp,
        concept_changes=True,
        label_delay=2.0,
        windows=WINDOWS + 2,
        speed=RETRAINING_SPEED,
    ),
    Scenario(
        "worse_challenger",
        "nothing changes; a retrain with a one-split tree is requested",
        lambda seed: Population(covariate=Never(), seed=seed),
        challenger_params=WEAK_CHALLENGER,
    ),
    Scenario(
        "canary_errors",
        "nothing changes; a canary that fails every request takes 20%",
        lambda seed: Population(covariate=Never(), seed=seed),
        canary="errors",
        windows=STABLE + 3,
    ),
    Scenario(
        "canary_slow",
        "nothing changes; a canary 250 ms slower takes 20%",
        lambda seed: Population(covariate=Never(), seed=seed),
        canary="slow",
        windows=STABLE + 3,
    ),
)


def named(names: list[str]) -> list[Scenario]:
    """The scenarios called ``names`` (all when empty); ValueError lists the known names."""
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; expected some of {', '.join(known)}")
    return [known[n] for n in names] if names else list(SCENARIOS)
