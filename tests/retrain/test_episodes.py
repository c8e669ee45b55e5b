"""Retrain episodes: alerts evaluated by the real alert engine on checks, window after window,
and the retrains ``on_alert`` queues for them (training itself is left out: a job's outcome
is recorded the way a finished training process records it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from monitor.alerts.engine import AlertEngine
from monitor.check_summary import CheckSummary
from monitor.config import AlertRuleConfig, RetrainConfig, Settings
from monitor.records import JobRecord, Service
from monitor.store import Store
from retrain.tasks import AlertTrigger
from tests.retrain.scenario import register

WINDOW = 600.0
DECAY = AlertRuleConfig.model_validate(
    {"name": "accuracy-decay", "kind": "quality_decay", "service": "credit", "metric": "accuracy", "threshold": 0.05}
)
ESTIMATED = DECAY.model_copy(update={"name": "estimated-decay", "options": {"source": "estimated"}})
DRIFT = AlertRuleConfig.model_validate({"name": "drift", "kind": "drift_share", "service": "credit", "threshold": 0.3})


class Loop:
    """A service watched window by window: one check, one alert tick, one trigger tick per window."""

    def __init__(self, store: Store, rules: tuple[AlertRuleConfig, ...], **policy: Any) -> None:
        policy = {
            "trigger": "on_alert",
            "cooldown": 0,
            "daily_cap": 50,
            "auto_promote": True,
            "min_labelled_rows": 0,
            **policy,
        }
        self.settings = Settings(alerts=rules, retrain=(RetrainConfig(service="credit", **policy),))
        self.store = store
        self.service: Service = register(store)
        self.engine = AlertEngine(store, self.settings)
        self.trigger = AlertTrigger(store, self.settings)
        self.now = time.time()  # jobs are stamped by the store's clock: windows run on from it

    def window(self, version: str, *, drift: float = 0.0, decay: float | None = None, estimated: float | None = None):  # type: ignore[no-untyped-def]
        """Check one window of ``version``, evaluate the alerts, let the trigger consider a retrain."""
        self.now += WINDOW
        summary: dict[str, Any] = {"rows": 2000, "drift_share": drift, "drifted_features": ["x1"] if drift else []}
        if decay is not None:
            summary["decay"] = {"accuracy": {"absolute": decay, "relative": decay / 0.9}}
        if estimated is not None:
            summary["estimated_decay"] = {"accuracy": {"absolute": estimated, "relative": estimated / 0.9}}
        self.store.add_check(
            self.service, window_start=self.now - WINDOW, window_end=self.now, model_version=version,
            status="ok", trigger="schedule", summary=CheckSummary.decode(summary), results={"features": []},
        )  # fmt: skip
        self.engine.tick(self.now)
        return self.trigger.consider("credit", self.now + 1)

    def finish(self, job: JobRecord, decision: str, version: str) -> None:
        """Record the job's outcome as the training process does."""
        self.store.finish_job(job.id, "succeeded", result={"decision": decision, "version": version})

    def jobs(self) -> list[JobRecord]:
        """Retrain jobs of the service, oldest first."""
        return sorted(self.store.list_jobs(service="credit", kind="retrain"), key=lambda j: j.id)

    def alert(self, rule: str) -> str:
        """The state of the newest alert of ``rule``."""
        return max((a for a in self.store.list_alerts(service="credit") if a.rule == rule), key=lambda a: a.id).state


def test_a_decay_alert_firing_across_many_windows_starts_exactly_one_retrain(store: Store) -> None:
    loop = Loop(store, (DECAY,))
    job = loop.window("1", decay=0.2)
    assert job is not None and job.params["trigger"] == "decay"
    episode = job.params["episode"]
    assert job.params["alert_id"] == episode and job.params["episode_alerts"] == [episode]
    for _ in range(3):  # the job runs while the old champion keeps decaying
        assert loop.window("1", decay=0.2) is None
    loop.finish(job, "promote", "2")
    for _ in range(6):  # rows of the old champion, then the new one's before its labels come
        assert loop.window("1", decay=0.2) is None
    for _ in range(3):
        assert loop.window("2", decay=None) is None
    assert loop.alert("accuracy-decay") == "firing" and len(loop.jobs()) == 1
    assert loop.window("2", decay=0.01) is None  # the promotion fixed it: the episode resolves
    assert loop.alert("accuracy-decay") == "resolved" and len(loop.jobs()) == 1


@pytest.mark.parametrize("outcome", ["reject", "failed"])
def test_a_second_retrain_starts_when_the_first_promoted_nothing(store: Store, outcome: str) -> None:
    loop = Loop(store, (DECAY,))
    first = loop.window("1", decay=0.2)
    assert first is not None
    if outcome == "failed":
        store.finish_job(first.id, "failed", error="out of memory")
    else:
        loop.finish(first, "reject", "2")
    second = loop.window("1", decay=0.2)
    assert second is not None and second.id != first.id
    assert second.params["episode"] == first.params["episode"]


def test_a_second_retrain_starts_when_the_promoted_model_is_itself_decaying(store: Store) -> None:
    loop = Loop(store, (DECAY,))
    first = loop.window("1", decay=0.2)
    assert first is not None
    loop.finish(first, "promote", "2")
    assert loop.window("1", decay=0.2) is None  # the old champion's decay is not the new one's
    second = loop.window("2", decay=0.12)  # the promoted version against its own baseline
    assert second is not None and second.params["episode"] == first.params["episode"]
    loop.finish(second, "promote", "3")
    assert loop.window("2", decay=0.12) is None
    assert len(loop.jobs()) == 2


def test_a_challenger_waiting_for_a_decision_holds_its_episode(store: Store) -> None:
    loop = Loop(store, (DECAY,), auto_promote=False)
    first = loop.window("1", decay=0.2)
    assert first is not None
    loop.finish(first, "pending", "2")
    assert [loop.window("1", decay=0.2) for _ in range(3)] == [None, None, None]


def test_a_challenger_in_shadow_holds_its_episode_until_the_shadow_fails(store: Store) -> None:
    loop = Loop(store, (DECAY,), stages=("shadow",))
    first = loop.window("1", decay=0.2)
    assert first is not None
    loop.finish(first, "shadow", "2")
    stage = store.start_stage(loop.service, "shadow", "2", champion="1", actor=f"job:{first.id}")
    assert [loop.window("1", decay=0.2) for _ in range(3)] == [None, None, None]
    store.end_stage(loop.service, stage.id, "failed", "not better on 500 live labelled rows")
    second = loop.window("1", decay=0.2)  # the shadow promoted nothing
    assert second is not None and second.params["episode"] == first.params["episode"]


def test_a_shadow_that_passed_counts_as_a_promotion_of_its_episode(store: Store) -> None:
    loop = Loop(store, (DECAY,), stages=("shadow",))
    first = loop.window("1", decay=0.2)
    assert first is not None
    loop.finish(first, "shadow", "2")
    stage = store.start_stage(loop.service, "shadow", "2", champion="1", actor=f"job:{first.id}")
    store.end_stage(loop.service, stage.id, "passed", "better on 500 live labelled rows")
    assert loop.window("1", decay=0.2) is None  # the old champion's decay is not the new one's
    assert loop.window("2", decay=0.12) is not None  # the promoted shadow itself decays


def test_drift_alone_alerts_but_starts_no_retrain_unless_the_policy_lists_it(store: Store) -> None:
    loop = Loop(store, (DRIFT,))
    assert [loop.window("1", drift=0.8) for _ in range(3)] == [None, None, None]
    assert loop.alert("drift") == "firing" and loop.jobs() == []
    opted = Loop(store, (DRIFT,), retrain_on=["drift"])
    job = opted.window("1", drift=0.8)
    assert job is not None and job.params["trigger"] == "drift"
    assert opted.window("1", drift=0.8) is None


def test_estimated_decay_retrains_only_where_the_policy_lists_it(store: Store) -> None:
    realized_only = Loop(store, (ESTIMATED,), retrain_on=["decay"])
    assert realized_only.window("1", estimated=0.2) is None
    assert realized_only.alert("estimated-decay") == "firing" and realized_only.jobs() == []
    default = Loop(store, (ESTIMATED,))
    job = default.window("1", estimated=0.2)
    assert job is not None and job.params["trigger"] == "estimated_decay"


def test_drift_and_decay_firing_together_are_one_episode(store: Store) -> None:
    loop = Loop(store, (DRIFT, DECAY), retrain_on=["drift", "decay"])
    first = loop.window("1", drift=0.8, decay=0.2)
    assert first is not None and len(first.params["episode_alerts"]) == 2
    loop.finish(first, "promote", "2")
    assert [loop.window("2", drift=0.5) for _ in range(3)] == [None, None, None]  # still drifting, not decaying
    assert loop.alert("drift") == "firing" and len(loop.jobs()) == 1


def test_a_new_episode_after_the_last_resolved_gets_its_own_retrain(store: Store) -> None:
    loop = Loop(store, (DECAY,))
    first = loop.window("1", decay=0.2)
    assert first is not None
    loop.finish(first, "promote", "2")
    assert loop.window("2", decay=0.0) is None and loop.alert("accuracy-decay") == "resolved"
    second = loop.window("2", decay=0.2)
    assert second is not None and second.params["episode"] != first.params["episode"]


def test_bad_retrain_on_values_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"retrain_on\.0[\s\S]*'decay', 'estimated_decay' or 'drift'"):
        RetrainConfig(service="credit", retrain_on=["latency"])
