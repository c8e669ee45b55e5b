"""Runs one scenario through ``mlwatch demo``'s real processes and measures what the loop did.

The demo's machinery does the work: ``Demo.start`` writes the configuration, starts the API
server, the worker, ``mlwatch serve``, the agent and the dashboard, and trains the first model
through a retrain job; ``Traffic`` then calls the served model with the scenario's rows and
posts each label ``label_delay`` windows later to the API. Everything is read back at the end
from the API (alerts, versions, gate decisions, alias history) and from the store (retrain
jobs); the served model's accuracy comes from what ``mlwatch serve`` answered, row by row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from benchmarks.scenarios.canary import SHARE
from benchmarks.scenarios.catalog import Scenario
from benchmarks.scenarios.oracle import accuracy, fit_oracle
from monitor.demo.config import SERVICE, DemoPorts
from monitor.demo.data import TARGET
from monitor.demo.runner import Demo, DemoOptions
from monitor.demo.traffic import Batch, Traffic
from monitor.store import Store
from retrain.actions import RETRAIN

DETECTING = frozenset({"drift_share", "feature_drift", "prediction_drift", "quality_decay"})
SETTLE = 3.0  # windows after the onset from which accuracy is judged (the target's "within 3 windows")
ORACLE_ROWS = 6000
ORACLE_SEED = 10_000_000  # far from the traffic's batch seeds, which count up from 1000


@dataclass(frozen=True)
class RunOptions:
    """How fast and how hard the scenarios run."""

    seed: int = 0
    speed: float | None = None  # one window lasts 3600 / speed seconds; None: each scenario's own

    rate: float = 80.0  # predictions per second
    keep: Path | None = None  # keep each run's directory (store, MLflow, logs) under here


@dataclass(frozen=True)
class Outcome:
    """One scenario's figures: the row ``make scenarios`` prints."""

    scenario: str
    detection_delay: float | None = None  # windows from the onset to the first drift or decay alert
    early_alerts: int = 0  # drift or decay alerts that fired before the onset
    retrains: int = 0
    promotions: int = 0
    rollbacks: int = 0
    rejected: int = 0  # challengers the gate refused
    retrain_at: float | None = None  # windows from the onset to the first retrain request
    promoted_at: float | None = None  # windows from the onset to the first promotion
    baseline: float | None = None  # served accuracy before the onset
    accuracy: float | None = None  # served accuracy from SETTLE windows after the onset to the end
    oracle: float | None = None  # the oracle's accuracy on the same rows
    by_window: tuple[float, ...] = ()  # served accuracy in each window
    failures: int = 0  # model calls that failed
    canary_status: str | None = None  # how the scenario's canary stage ended
    canary_ended_after: float | None = None  # windows from the canary's start to its end
    canary_rows: int = 0  # rows the canary answered
    canary_rows_share: float | None = None  # of the rows served while it ran
    seconds: float = 0.0
    not_run: str | None = None
    misses: tuple[str, ...] = ()  # targets missed


class Recorder:
    """Keeps every batch the served model answered (``Traffic``'s ``on_batch``)."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._lock = threading.Lock()

    def __call__(self, batch: Batch) -> None:
        """Keep one batch."""
        with self._lock:
            self.batches.append(batch)

    def frame(self) -> pd.DataFrame:
        """Every answered row with its ``t`` (windows), ``predicted`` label and serving ``version``."""
        with self._lock:
            batches = list(self.batches)
        return pd.concat(
            [b.frame.assign(t=b.t, predicted=b.predictions, version=b.version) for b in batches], ignore_index=True
        )


def run_scenario(scenario: Scenario, options: RunOptions, echo: Callable[[str], None] = print) -> Outcome:
    """Replay ``scenario`` through fresh processes in a temporary directory and measure it."""
    if scenario.not_run:
        return Outcome(scenario.name, not_run=scenario.not_run)
    started = time.monotonic()
    with _workdir(scenario, options) as workdir:
        recorder = Recorder()
        demo = Demo(_demo_options(workdir, scenario, options, recorder), echo=lambda _: None)
        try:
            settings = demo.start()
            traffic = demo.make_traffic()
            _replay(demo, traffic, scenario, echo, settings.mlflow_tracking_uri)
            state = _state(demo, settings.store_url)
        finally:
            demo.stop()
    assert traffic.started_at is not None
    frame = recorder.frame()
    return measure(scenario, options, state, frame, traffic.started_at, time.monotonic() - started)


@contextlib.contextmanager
def _workdir(scenario: Scenario, options: RunOptions) -> Iterator[Path]:
    """A temporary directory, or ``<keep>/<scenario>`` (emptied first) when the run is to be kept."""
    if options.keep is None:
        with tempfile.TemporaryDirectory(prefix=f"mlwatch-{scenario.name}-") as tmp:
            yield Path(tmp)
        return
    kept = options.keep / scenario.name
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    yield kept


def speed_of(scenario: Scenario, options: RunOptions) -> float:
    """The time compression a scenario runs at: the one asked for, else the scenario's own."""
    return options.speed or scenario.speed


def _demo_options(workdir: Path, scenario: Scenario, options: RunOptions, recorder: Recorder) -> DemoOptions:
    ports = DemoPorts(api=_free_port(), dashboard=_free_port(), serve=_free_port(), receiver=_free_port())
    return DemoOptions(
        workdir,
        speed=speed_of(scenario, options),
        ports=ports,
        rows_per_second=options.rate,
        label_delay_hours=scenario.label_delay,
        source=scenario.population(options.seed),
        on_batch=recorder,
    )


def _replay(demo: Demo, traffic: Traffic, scenario: Scenario, echo: Callable[[str], None], tracking_uri: str) -> None:
    """Send traffic for ``scenario.windows`` windows; switch to the weak challenger at the onset if asked."""
    hour = 3600.0 / demo.options.speed
    thread = threading.Thread(target=traffic.run, name="scenario-traffic", daemon=True)
    thread.start()
    challenged, shown = scenario.challenger_params is None, -1
    canaried = False
    try:
        while thread.is_alive():
            t = 0.0 if traffic.started_at is None else (time.time() - traffic.started_at) / hour
            if t >= scenario.windows:
                break
            if not challenged and t >= scenario.onset:
                _challenge(demo, scenario.challenger_params or {})
                challenged = True
            if scenario.canary is not None and not canaried and t >= scenario.onset:
                _start_canary(demo, scenario.canary, tracking_uri)
                canaried = True
            if int(t) > shown:
                shown = int(t)
                stats = traffic.stats
                echo(f"  [{scenario.name}] window {shown}: {stats.rows} rows, {stats.labels} labels, {stats.versions}")
            time.sleep(0.5)
    finally:
        traffic.stop.set()
        thread.join(15)


def _challenge(demo: Demo, params: dict[str, Any]) -> None:
    """The team's change: a weaker estimator in the retrain policy, the worker restarted, a retrain asked for."""
    path = demo.home / "demo.yaml"
    config = yaml.safe_load(path.read_text())
    config["retrain"][0]["params"] = params
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    demo.stack.restart("worker", "worker", "--log-level", "warning")
    with _api(demo) as api:
        api.post(f"/v1/services/{SERVICE}/retrain", json={}).raise_for_status()


def _start_canary(demo: Demo, kind: str, tracking_uri: str) -> None:
    """An operator's canary of a faulty version (``benchmarks.scenarios.canary``)."""
    from benchmarks.scenarios.canary import register_faulty, start_canary

    with _api(demo) as api:
        model = api.get(f"/v1/services/{SERVICE}/models").json()["model_name"]
        version = register_faulty(tracking_uri, model, kind, demo.home)
        start_canary(api, SERVICE, version)


def _api(demo: Demo) -> httpx.Client:
    url = f"http://127.0.0.1:{demo.options.ports.api}"
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {demo.token}"}, timeout=30)


def _state(demo: Demo, store_url: str) -> dict[str, Any]:
    """Alerts, versions, decisions and alias history from the API; retrain jobs from the store."""
    with _api(demo) as api:
        alerts = api.get("/v1/alerts", params={"service": SERVICE, "limit": 500}).json()
        models = api.get(f"/v1/services/{SERVICE}/models").json()
        stages = api.get(f"/v1/services/{SERVICE}/stages", params={"limit": 50}).json()["stages"]
    store = Store.open(store_url)
    try:
        jobs = store.list_jobs(service=SERVICE, kind=RETRAIN, limit=1000)
    finally:
        store.close()
    return {
        "alerts": alerts,
        "models": models,
        "jobs": jobs,
        "stages": stages,
        "failures": demo.traffic.stats.failures if demo.traffic else 0,
    }


def measure(
    scenario: Scenario,
    options: RunOptions,
    state: dict[str, Any],
    rows: pd.DataFrame,
    started_at: float,
    seconds: float,
) -> Outcome:
    """The scenario's figures from what the run left behind, and the targets it missed."""
    hour = 3600.0 / speed_of(scenario, options)
    onset_at = started_at + scenario.onset * hour
    fired = sorted(a["fired_at"] for a in state["alerts"] if a["kind"] in DETECTING and a["fired_at"])
    after = [f for f in fired if f >= onset_at]
    moves = _champion_moves(state["models"], started_at)
    retrains = sorted(j.created_at for j in state["jobs"] if j.created_at >= started_at)
    promoted = [ts for ts, old, new in moves if new > old]
    late = rows[(rows["t"] >= scenario.onset + SETTLE) & (rows["t"] <= scenario.windows)]
    oracle_times = list(np.linspace(scenario.onset + SETTLE, scenario.windows, 30))
    oracle = fit_oracle(scenario.population(options.seed).draw(ORACLE_ROWS, oracle_times, seed=ORACLE_SEED))
    outcome = Outcome(
        scenario.name,
        detection_delay=(after[0] - onset_at) / hour if after else None,
        early_alerts=len(fired) - len(after),
        retrains=len(retrains),
        promotions=len(promoted),
        rollbacks=sum(1 for _, old, new in moves if new < old),
        retrain_at=(retrains[0] - onset_at) / hour if retrains else None,
        promoted_at=(promoted[0] - onset_at) / hour if promoted else None,
        rejected=sum(1 for d in state["models"]["decisions"] if d["decision"] == "reject"),
        baseline=_served(rows[rows["t"] < scenario.onset]),
        accuracy=_served(late),
        oracle=accuracy(oracle, late) if len(late) else None,
        by_window=tuple(_served(rows[rows["t"].astype(int) == w]) or 0.0 for w in range(int(scenario.windows))),
        failures=state["failures"],
        seconds=seconds,
        **_canary_figures(state.get("stages", []), rows, started_at, hour),
    )
    return _judged(scenario, outcome)


def _canary_figures(stages: list[dict[str, Any]], rows: pd.DataFrame, started_at: float, hour: float) -> dict[str, Any]:
    """How the run's canary stage ended, how fast, and how much of the traffic of its time it answered."""
    canary = next((s for s in stages if s["stage"] == "canary"), None)
    if canary is None:
        return {}
    begin = (canary["started_at"] - started_at) / hour
    end = float(rows["t"].max()) if canary["ended_at"] is None else (canary["ended_at"] - started_at) / hour
    period = rows[(rows["t"] >= begin) & (rows["t"] <= end)]
    answered = int((period["version"] == canary["version"]).sum())
    return {
        "canary_status": canary["status"],
        "canary_ended_after": None if canary["ended_at"] is None else end - begin,
        "canary_rows": answered,
        "canary_rows_share": answered / len(period) if len(period) else None,
    }


def _champion_moves(models: dict[str, Any], since: float) -> list[tuple[float, int, int]]:
    """(when, from, to) version numbers of each move of the ``champion`` alias since traffic started."""
    return [
        (float(h["ts"]), int(h["from_version"]), int(h["to_version"]))
        for h in models["history"]
        if h["alias"] == "champion" and h["ts"] >= since and h["from_version"] and h["to_version"]
    ]


def _served(rows: pd.DataFrame) -> float | None:
    if rows.empty:
        return None
    return float(np.mean(rows["predicted"].astype(int).to_numpy() == rows[TARGET].to_numpy()))


def _judged(scenario: Scenario, outcome: Outcome) -> Outcome:
    """``outcome`` with the names of the targets it missed."""
    misses = []
    changes = scenario.challenger_params is None and scenario.canary is None
    if changes and (outcome.detection_delay is None or outcome.detection_delay > 2):
        misses.append("detected within 2 windows")
    if scenario.canary is not None:
        if outcome.canary_status != "rolled_back" or (outcome.canary_ended_after or 0.0) > 1.0:
            misses.append("canary rolled back within 1 window")
        if outcome.failures > SHARE * max(1, outcome.canary_rows):
            misses.append("client errors within the canary's share")
    if outcome.promotions > 1:
        misses.append("at most 1 promotion")
    if not scenario.concept_changes and outcome.promotions > 0:
        misses.append(
            "0 promotions (concept unchanged)" if scenario.challenger_params is None else "worse never promoted"
        )
    if scenario.concept_changes and (outcome.accuracy or 0.0) < (outcome.oracle or 0.0) - 0.03:
        misses.append("within 3 points of the oracle")
    return dataclasses.replace(outcome, misses=tuple(misses))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
