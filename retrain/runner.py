"""One retrain job, end to end: data → MLflow run → trained model → new version → gate → decision.

The model is a LoggedModel of the run (``retrain.logged_model``), registered as
``models:/<model_id>``; the run's inputs are the training and evaluation datasets with the
store window as their source (``retrain.lineage``), and the holdout metrics are logged
against the LoggedModel and the evaluation dataset.

    >>> result = JobRunner(store, settings, registry).run(job)

Everything goes through an injected ``MlflowClient`` (no process-global tracking URI,
except inside MLflow Projects, which need it). Progress, log lines and cancellation go
through the store, so the API and dashboard see them while the job runs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.config import Settings
from monitor.records import JobRecord, Service
from monitor.store import Store
from retrain.data import WEIGHT, TrainingData, build_training_data
from retrain.errors import JobCancelled, TrainerError
from retrain.evaluation import Verdict, check_gate_metric, decide, metrics, predictions
from retrain.logged_model import NAME, log_model, register
from retrain.notify import emit
from retrain.registry import Registry, model_name
from retrain.significance import gain_interval
from retrain.trainers import TrainedModel, TrainRequest, make_trainer

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel

log = logging.getLogger("mlwatch.retrain")
REFERENCE_SAMPLE_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class Candidate:
    """The challenger as registered: its version, run, local model directory, LoggedModel id
    and the (name, digest) of the dataset it is scored on."""

    version: str
    run_id: str
    path: str
    model_id: str
    holdout: tuple[str, str]


class JobRunner:
    """Runs retrain jobs against one store, configuration and registry."""

    def __init__(self, store: Store, settings: Settings, registry: Registry, clock: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings
        self.registry = registry
        self.client: MlflowClient = registry.client
        self.clock = clock

    def run(self, job: JobRecord) -> dict[str, Any]:
        """Run ``job`` and record its outcome in the store (succeeded, failed or cancelled)."""
        data = {"service": job.service, "job_id": job.id, "mode": job.params.get("mode")}
        emit(self.store, self.settings, "retrain.started", data)
        try:
            result = self._run(job)
        except JobCancelled as exc:
            self.store.finish_job(job.id, "cancelled", error=str(exc))
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            self.store.job_progress(job.id, line=f"failed: {message}")
            self.store.finish_job(job.id, "failed", error=message)
            emit(self.store, self.settings, "retrain.failed", {**data, "error": message}, severity="warning")
            raise
        self.store.finish_job(job.id, "succeeded", result=result)
        emit(self.store, self.settings, "retrain.finished", {**data, **_brief(result)})
        return result

    def _step(self, job: JobRecord, progress: float, line: str) -> None:
        log.info("job %s: %s", job.id, line)
        if self.store.job_progress(job.id, progress=progress, line=line):
            raise JobCancelled(f"job {job.id} was cancelled by an operator")

    def _run(self, job: JobRecord) -> dict[str, Any]:
        service = self.store.get_service(str(job.service))
        policy = self.settings.retrain_policy(service.name)
        check_gate_metric(policy.gate, service.task)
        make_trainer(policy)  # a bad trainer setting fails before any work
        mode = str(job.params.get("mode", policy.mode))
        self._step(job, 0.05, f"building the training data ({mode})")
        since = job.params.get("since")
        data = build_training_data(
            self.store, service, policy, self.clock(), since=float(since) if since is not None else None
        )
        self._step(job, 0.15, f"{len(data.train)} training rows, {len(data.holdout)} held out")
        model = model_name(service)
        champion = self.registry.champion(model)
        run_id = self._start_run(job, service, data, mode)
        try:
            with tempfile.TemporaryDirectory(prefix="mlwatch-job-") as tmp:
                result = self._train_and_decide(job, service, data, mode, champion, run_id, tmp)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        return result

    def _train_and_decide(
        self,
        job: JobRecord,
        service: Service,
        data: TrainingData,
        mode: str,
        champion: str | None,
        run_id: str,
        tmp: str,
    ) -> dict[str, Any]:
        policy = self.settings.retrain_policy(service.name)
        champion_path = self._download(model_name(service), champion, tmp) if champion else None
        if mode == "fine_tune" and champion_path is None:
            raise TrainerError(f"fine-tune needs a champion of {model_name(service)!r} to start from; it has none yet")
        self._step(job, 0.2, f"training with {policy.trainer}")
        request = TrainRequest(
            data, mode, dict(policy.params), champion_path, run_id, self.settings.mlflow_tracking_uri
        )
        trained = make_trainer(policy).train(request)
        if mode == "fine_tune" and champion is not None:
            self._log_started_from(run_id, model_name(service), champion)
        self._step(job, 0.6, "logging and registering the model")
        candidate = self._register(job, service, data, trained, run_id, tmp)
        self._step(job, 0.75, f"registered version {candidate.version}; scoring against champion {champion}")
        verdict = self._evaluate(service, data, candidate, champion_path, run_id)
        self._after(job, service, data, candidate, run_id, verdict)  # reference and baseline before any promotion
        result = self._decide(job, service, data, candidate, champion, verdict)
        self._step(job, 0.98, f"decision: {result['decision']} ({verdict.reason})")
        return result

    def _start_run(self, job: JobRecord, service: Service, data: TrainingData, mode: str) -> str:
        name = f"mlwatch/{service.name}"
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        tags = {
            "mlwatch.trigger": str(job.params.get("trigger", "manual")),
            "mlwatch.job_id": str(job.id),
            "mlwatch.data_window": json.dumps(data.window.as_dict()),
            "mlwatch.mode": mode,
            "mlwatch.service": service.name,
        }
        run = self.client.create_run(experiment_id, tags=tags, run_name=f"{service.name}-job-{job.id}")
        return str(run.info.run_id)

    def _download(self, model: str, version: str, tmp: str) -> str:
        import mlflow.artifacts

        uri = self.client.get_model_version_download_uri(model, version)
        target = os.path.join(tmp, f"champion-{version}")
        os.makedirs(target, exist_ok=True)
        return str(
            mlflow.artifacts.download_artifacts(uri, dst_path=target, tracking_uri=self.settings.mlflow_tracking_uri)
        )

    def _register(
        self, job: JobRecord, service: Service, data: TrainingData, trained: TrainedModel, run_id: str, tmp: str
    ) -> Candidate:
        holdout = self._log_run(run_id, service, data, trained)
        tags = {"mlwatch.job_id": str(job.id), "mlwatch.trigger": str(job.params.get("trigger", "manual"))}
        tags["mlwatch.data_window"] = json.dumps(data.window.as_dict())
        path = os.path.join(tmp, "model")
        if trained.logged:
            logged = self._logged_by_trainer(run_id)
        else:
            params = self.settings.retrain_policy(service.name).params
            logged = log_model(self.client, run_id, trained, data, params, path, tags)
        model = model_name(service)
        self.registry.ensure_model(model)
        version = register(self.client, self.settings.mlflow_tracking_uri, model, logged, tags)
        local = path if not trained.logged else self._download(model, str(version.version), tmp)
        return Candidate(str(version.version), run_id, local, str(logged.model_id), holdout)

    def _logged_by_trainer(self, run_id: str) -> LoggedModel:
        """The model a trainer (an MLflow Project) logged in the run, named ``model``."""
        run = self.client.get_run(run_id)
        found = self.client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
        named = [m for m in found if m.name == NAME] or list(found)
        if not named:
            raise TrainerError(f"the trainer logged no model in run {run_id}; log it with name='{NAME}'")
        return named[0]

    def _log_started_from(self, run_id: str, model: str, version: str) -> None:
        """A fine-tune's lineage: the champion's LoggedModel as a model input of the run (versions
        registered before mlwatch logged LoggedModels have none)."""
        from mlflow.entities import LoggedModelInput

        source = str(self.client.get_model_version(model, version).source or "")
        model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
        if model_id:
            self.client.log_inputs(run_id, models=[LoggedModelInput(model_id)])

    def _log_run(self, run_id: str, service: Service, data: TrainingData, trained: TrainedModel) -> tuple[str, str]:
        """Parameters and the input datasets (sourced from the store window); returns the
        evaluation dataset's name and digest, which the holdout metrics are logged against."""
        from mlflow.entities import Param

        from retrain.lineage import dataset_inputs, datasets

        params = {**{k: json.dumps(v) if not isinstance(v, str) else v for k, v in trained.params.items()}}
        params.update(task=data.task, target=data.target, features=",".join(data.features)[:6000])
        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        found = datasets(data, self.settings.store_url, service.name)
        self.client.log_inputs(run_id, datasets=dataset_inputs(found))
        return found["evaluation"].name, found["evaluation"].digest

    def _evaluate(
        self, service: Service, data: TrainingData, candidate: Candidate, champion_path: str | None, run_id: str
    ) -> Verdict:
        from mlflow.entities import Metric

        gate = self.settings.retrain_policy(service.name).gate
        truth = data.holdout[data.target].to_numpy()
        said = _predictions(candidate.path, data)
        challenger = metrics(truth, said, data.task)
        champion, interval = None, None
        if champion_path is not None:
            said_before = _predictions(champion_path, data)
            champion = metrics(truth, said_before, data.task)
            if gate.confidence > 0:
                interval = gain_interval(gate.metric, data.task, truth, said, said_before, gate.confidence)
        now = int(self.clock() * 1000)
        name, digest = candidate.holdout
        logged = [
            Metric(f"holdout_{k}", v, now, 0, model_id=candidate.model_id, dataset_name=name, dataset_digest=digest)
            for k, v in challenger.items()
        ]
        logged += [Metric(f"champion_holdout_{k}", v, now, 0) for k, v in (champion or {}).items()]
        self.client.log_batch(run_id, metrics=logged)
        return decide(gate, challenger, champion, interval)

    def _decide(
        self,
        job: JobRecord,
        service: Service,
        data: TrainingData,
        candidate: Candidate,
        champion: str | None,
        verdict: Verdict,
    ) -> dict[str, Any]:
        policy = self.settings.retrain_policy(service.name)
        decision = "reject" if not verdict.passed else ("promote" if policy.auto_promote else "pending")
        if decision == "promote" and policy.stages and champion is not None:
            decision = policy.stages[0]  # promoted only once its stages passed (retrain.stages.review)
        numbers = {**verdict.as_dict(), "champion_version": champion, "episode": job.params.get("episode")}
        model = model_name(service)
        self.store.add_decision(
            service=service.name,
            model_name=model,
            version=candidate.version,
            job_id=job.id,
            decision=decision,
            metrics=numbers,
            reason=verdict.reason,
        )
        self.registry.tag_version(
            model, candidate.version, {"mlwatch.decision": decision, "mlwatch.gate": verdict.reason}
        )
        if decision in policy.stages:
            self._start_stage(job, candidate.version, decision)
        if decision == "promote":
            from retrain.actions import announcer

            actor = f"job:{job.id}"
            announce = announcer(self.store, self.settings, service, actor, "model.promoted")
            self.registry.promote(service, candidate.version, actor=actor, reason=verdict.reason, on_change=announce)
        return {
            "version": candidate.version,
            "run_id": candidate.run_id,
            "decision": decision,
            "reason": verdict.reason,
            "metrics": numbers,
            "champion_version": champion,
            "data_window": data.window.as_dict(),
            "episode": job.params.get("episode"),
        }

    def _start_stage(self, job: JobRecord, version: str, stage: str) -> None:
        """Put the gate's winner in its first rollout stage; a refusal (another stage active,
        another signature) leaves it registered for an operator, and says why in the job's log."""
        from monitor.errors import MlwatchError
        from retrain.stages import start_stage

        try:
            start_stage(
                self.store,
                self.settings,
                str(job.service),
                version,
                stage,
                actor=f"job:{job.id}",
                registry=self.registry,
            )
        except MlwatchError as exc:
            self._step(job, 0.97, f"version {version} passed the gate but could not start its {stage}: {exc}")

    def _after(
        self, job: JobRecord, service: Service, data: TrainingData, candidate: Candidate, run_id: str, verdict: Verdict
    ) -> None:
        """Keep the new version's training data as its reference and its holdout scores as its quality
        baseline; attach the triggering check's report."""
        from monitor.drift.reference import keep_reference  # pandas and numpy: only once a model is trained

        keep_reference(
            self.store,
            service,
            reference_sample(data.train),
            model_version=candidate.version,
            source=f"retrain job {job.id}",
        )
        if verdict.challenger:
            self.store.set_reference_baseline(service, candidate.version, candidate.version, dict(verdict.challenger))
        check_id = job.params.get("check_id")
        if check_id is not None:
            html = self.store.check_report(int(check_id))
            if html is not None:
                self.client.log_text(run_id, html.decode("utf-8", "replace"), f"evidently/check-{check_id}.html")


def reference_sample(train: pd.DataFrame) -> pd.DataFrame:
    """Rows drawn in proportion to their training weight: the population the model was fitted to.

    Without the weights, reference rows kept at a low ``reference_weight`` after a concept
    change (or old rows under ``recency_half_life``) would make the new version's drift
    checks compare against the old population. Equal weights keep the rows as they are.
    """
    weights = train[WEIGHT].clip(lower=0)
    size = min(REFERENCE_SAMPLE_ROWS, len(train))
    if weights.nunique() > 1 and weights.sum() > 0:
        train = train.sample(size, replace=True, weights=weights, random_state=0)
    elif size < len(train):
        train = train.sample(size, random_state=0)
    return train.drop(columns=[WEIGHT]).reset_index(drop=True)


def _predictions(path: str, data: TrainingData) -> Any:
    """What the model saved at ``path`` predicts for each holdout row."""
    import mlflow.pyfunc

    return predictions(mlflow.pyfunc.load_model(path).predict, data.holdout, data.target)


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("version", "decision", "reason", "champion_version")}
