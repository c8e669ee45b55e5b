"""Retrain jobs run in-process against a SQLite store and a SQLite MLflow store.

The tests of this module build on each other in order (champion, better challenger, worse
challenger, fine-tune), sharing trained models to stay fast.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
import pytest
from mlflow.entities import LoggedModel

from monitor.check_summary import CheckSummary
from monitor.config import GateConfig, RetrainConfig, Settings, WebhookConfig
from monitor.drift.reference import keep_reference
from monitor.records import JobRecord
from monitor.store import Store
from retrain.actions import request_retrain
from retrain.errors import JobCancelled
from retrain.registry import Registry
from retrain.runner import JobRunner
from tests.retrain.scenario import frame, register, send_traffic

FAST = {"estimator": "random_forest", "estimator_params": {"n_estimators": 20, "max_depth": 8, "random_state": 0}}
PROJECT = str(Path(__file__).parent / "project")
STUMP = {"estimator": "decision_tree", "estimator_params": {"max_depth": 1}}


@dataclass
class World:
    store: Store
    settings: Settings
    registry: Registry

    def run(
        self,
        service: str,
        mode: str = "retrain",
        settings: Settings | None = None,
        extra: dict[str, object] | None = None,
    ) -> JobRecord:
        job, _ = request_retrain(self.store, self.settings, service, mode=mode, actor="test", extra=extra)
        claimed = self.store.claim_job("test-worker")
        assert claimed is not None and claimed.id == job.id
        with contextlib.suppress(Exception):  # the outcome is in the store, which is what is asserted
            JobRunner(self.store, settings or self.settings, self.registry).run(claimed)
        return self.store.get_job(job.id)


def _settings(tmp: Path, mlflow_uri: str, credit: dict[str, object]) -> Settings:
    return Settings(
        store_url=f"sqlite:///{tmp / 'mlwatch.db'}",
        mlflow_tracking_uri=mlflow_uri,
        webhooks=(WebhookConfig(name="ops", url="http://127.0.0.1:9/hook"),),
        retrain=(
            RetrainConfig(service="credit", auto_promote=True, params=credit, gate=GateConfig(metric="f1")),
            RetrainConfig(service="stumps", auto_promote=True, params=STUMP),
            RetrainConfig(service="custom", auto_promote=False, trainer="tests.retrain.user_trainers:logistic"),
            RetrainConfig(service="broken", trainer="tests.retrain.user_trainers:broken"),
            RetrainConfig(service="project", trainer="project", project_uri=PROJECT, auto_promote=True),
            RetrainConfig(service="shadowed", auto_promote=True, params=credit, stages=("shadow",)),
        ),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("runner")
    settings = _settings(tmp, mlflow_uri, FAST)
    store = Store.open(settings.store_url)
    for name in ("credit", "stumps", "custom", "broken", "project", "shadowed"):
        keep_reference(store, register(store, name), frame(1500, seed=1))
    yield World(store, settings, Registry.from_settings(settings, store))
    store.close()


def test_first_retrain_registers_the_champion_with_its_run_metadata(world: World) -> None:
    job = world.run("credit")
    assert job.status == "succeeded", job.error
    assert job.result is not None and job.result["decision"] == "promote" and job.result["version"] == "1"
    assert world.registry.champion("credit") == "1"
    run = world.registry.client.get_run(job.result["run_id"])
    assert run.data.tags["mlwatch.trigger"] == "manual" and run.data.tags["mlwatch.job_id"] == str(job.id)
    assert '"holdout_source": "reference"' in run.data.tags["mlwatch.data_window"]
    contexts = sorted(i.tags[0].value for i in run.inputs.dataset_inputs)
    assert contexts == ["evaluation", "training"]
    assert run.data.metrics["holdout_f1"] > 0.8
    assert "1.0" not in job.log and "decision: promote" in job.log


def _logged_model(world: World, service: str, version: str) -> LoggedModel:
    """The LoggedModel that ``version`` of ``service``'s model was registered from, checked for lineage."""
    client = world.registry.client
    registered = client.get_model_version(service, version)
    run = client.get_run(str(registered.run_id))
    found = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    assert [(m.name, f"models:/{m.model_id}") for m in found] == [("model", registered.source)]
    assert [o.model_id for o in run.outputs.model_outputs] == [found[0].model_id]
    sources = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(sources) == {"training", "evaluation"}
    for context, dataset in sources.items():
        assert dataset.source_type == "mlwatch_store" and dataset.name == f"{service}-{context}"
        source = json.loads(dataset.source)
        assert source["service"] == service and source["uri"].startswith(f"mlwatch://{service}/")
        assert source["store"] == world.settings.store_url and float(source["window_end"]) > 0
    return found[0]


def test_a_retrained_model_is_a_logged_model_with_its_store_window_as_lineage(world: World) -> None:
    logged = _logged_model(world, "credit", "1")
    assert str(logged.status) in ("READY", "LoggedModelStatus.READY") and logged.model_type == "classification"
    evaluation = next(
        i.dataset
        for i in world.registry.client.get_run(str(logged.source_run_id)).inputs.dataset_inputs
        if i.tags[0].value == "evaluation"
    )
    scored = {m.key: m for m in logged.metrics or []}
    assert scored["holdout_f1"].value > 0.8
    assert (scored["holdout_f1"].dataset_name, scored["holdout_f1"].dataset_digest) == (
        evaluation.name,
        evaluation.digest,
    )
    uri = world.registry.client.get_model_version_download_uri("credit", "1")
    path = mlflow.artifacts.download_artifacts(uri, tracking_uri=world.settings.mlflow_tracking_uri)
    assert mlflow.pyfunc.load_model(path).metadata.model_id == logged.model_id


def test_retrain_on_drifted_relabeled_traffic_replaces_the_champion(world: World) -> None:
    service = world.store.get_service("credit")
    send_traffic(world.store, service, frame(1200, seed=2, drifted=True), version="1")
    job = world.run("credit")
    assert job.status == "succeeded", job.error
    result = job.result or {}
    metrics = result["metrics"]
    assert result["decision"] == "promote" and result["champion_version"] == "1"
    assert metrics["challenger"]["f1"] > metrics["champion"]["f1"]
    assert metrics["interval"]["low"] > 0 and metrics["interval"]["confidence"] == 0.95  # significantly better
    assert "95% interval [+" in result["reason"]
    assert result["data_window"]["holdout_source"] == "production"
    assert world.registry.aliases("credit") == {"champion": "2", "previous": "1"}
    assert world.store.list_decisions("credit")[0].version == "2"
    assert world.registry.version("credit", "2").tags["mlwatch.decision"] == "promote"
    assert world.store.reference_info(service, "2").model_version == "2"  # type: ignore[union-attr]
    events = [d.event_type for d in world.store.list_deliveries(receiver="ops")]
    assert {"retrain.started", "retrain.finished", "model.promoted"} <= set(events)


def test_a_worse_challenger_is_recorded_but_not_promoted(world: World, mlflow_uri: str, tmp_path: Path) -> None:
    job = world.run("credit", settings=_settings(tmp_path, mlflow_uri, STUMP))
    assert job.status == "succeeded", job.error
    result = job.result or {}
    assert result["decision"] == "reject" and "not better enough" in result["reason"]
    assert world.registry.champion("credit") == "2"
    assert world.registry.version("credit", result["version"]).tags["mlwatch.decision"] == "reject"


def test_fine_tune_continues_the_champion_with_warm_start_and_keeps_the_triggering_report(
    world: World, tmp_path: Path
) -> None:
    service = world.store.get_service("credit")
    check_id = world.store.add_check(
        service,
        window_start=0,
        window_end=1,
        model_version="2",
        status="ok",
        trigger="manual",
        summary=CheckSummary(),
        results={},
    )
    world.store.set_check_report(check_id, b"<html>drift report</html>")
    job = world.run("credit", mode="fine_tune", extra={"check_id": check_id})
    assert job.status == "succeeded", job.error
    run = world.registry.client.get_run((job.result or {})["run_id"])
    assert run.data.params["fine_tune"] == "warm_start" and run.data.tags["mlwatch.mode"] == "fine_tune"
    champion = world.registry.client.get_model_version("credit", "2").source
    assert [f"models:/{m.model_id}" for m in run.inputs.model_inputs] == [champion]
    report = world.registry.client.download_artifacts(
        run.info.run_id, f"evidently/check-{check_id}.html", str(tmp_path)
    )
    assert Path(report).read_text() == "<html>drift report</html>"


def test_fine_tune_of_an_estimator_that_cannot_continue_fails_clearly(world: World) -> None:
    assert world.run("stumps").status == "succeeded"
    job = world.run("stumps", mode="fine_tune")
    assert job.status == "failed"
    assert "DecisionTreeClassifier supports neither partial_fit nor warm_start" in str(job.error)
    assert "use mode: retrain" in str(job.error)


def test_a_failing_trainer_fails_the_job_with_its_error_and_notifies(world: World) -> None:
    job = world.run("broken")
    assert job.status == "failed"
    assert job.error == "TrainerError: trainer tests.retrain.user_trainers:broken raised RuntimeError: disk on fire"
    deliveries = world.store.list_deliveries(receiver="ops")
    failed = [d for d in deliveries if d.event_type == "retrain.failed" and '"broken"' in d.payload]
    assert len(failed) == 1 and "disk on fire" in failed[0].payload


def test_a_user_trainer_version_waits_for_a_click_without_auto_promote(world: World) -> None:
    job = world.run("custom")
    assert job.status == "succeeded", job.error
    assert (job.result or {})["decision"] == "pending"
    assert world.registry.champion("custom") is None
    assert world.registry.version("custom", "1").tags["mlwatch.decision"] == "pending"
    assert _logged_model(world, "custom", "1").params["trainer"] == "tests.retrain.user_trainers:logistic"


def test_a_cancelled_job_stops_at_its_next_step(world: World) -> None:
    job, _ = request_retrain(world.store, world.settings, "credit", actor="test")
    claimed = world.store.claim_job("test-worker")
    assert claimed is not None
    world.store.cancel_job(job.id)
    with pytest.raises(JobCancelled, match=f"job {job.id} was cancelled"):
        JobRunner(world.store, world.settings, world.registry).run(claimed)
    assert world.store.get_job(job.id).status == "cancelled"


def test_an_mlflow_project_trains_on_the_job_run_with_the_window_as_parameters(world: World) -> None:
    job = world.run("project")
    assert job.status == "succeeded", job.error
    result = job.result or {}
    run = world.registry.client.get_run(str(result["run_id"]))
    assert run.data.params["target"] == "label" and float(run.data.params["window_end"]) > 0
    assert run.data.tags["trained_window"].endswith(f"{run.data.params['window_end']} (retrain)")
    assert run.data.metrics["train_rows"] == result["data_window"]["reference_rows"]
    assert world.registry.champion("project") == result["version"] == "1"
    _logged_model(world, "project", "1")


def test_a_challenger_that_passes_the_gate_goes_to_shadow_instead_of_being_promoted(world: World) -> None:
    first = world.run("shadowed")
    assert (first.result or {})["decision"] == "promote"  # no champion yet: nothing to shadow beside
    service = world.store.get_service("shadowed")
    send_traffic(world.store, service, frame(1200, seed=2, drifted=True), version="1")
    job = world.run("shadowed")
    assert job.status == "succeeded", job.error
    result = job.result or {}
    assert result["decision"] == "shadow" and result["champion_version"] == "1"
    assert world.registry.aliases("shadowed") == {"champion": "1"}
    stage = world.store.active_stage(service)
    assert stage is not None and (stage.version, stage.champion_version) == (result["version"], "1")
    assert stage.actor == f"job:{job.id}"
    assert world.store.list_decisions("shadowed")[0].decision == "shadow"
    events = [d.event_type for d in world.store.list_deliveries(receiver="ops")]
    assert "model.shadow_started" in events
