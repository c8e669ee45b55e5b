"""The models page against a real (SQLite-backed) MLflow registry: versions, and what each button does."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from monitor.settings import load_settings
from monitor.store import Store

Open = Callable[..., AppTest]
PAGE = "pages/models.py"


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with model ``fraud`` versions 1 and 2 (made once: migrations are slow)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    (root / "artifacts").mkdir()
    signature = '[{"type": "double", "name": "amount", "required": true}]'
    (root / "artifacts" / "MLmodel").write_text(f"flavors: {{}}\nsignature:\n  inputs: '{signature}'\n")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("fraud", artifact_location=str(root / "artifacts"))
    client.create_registered_model("fraud")
    for f1 in (0.80, 0.86):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "f1", f1)
        client.log_metric(run.info.run_id, "accuracy", f1 + 0.05)
        client.set_terminated(run.info.run_id)
        client.create_model_version("fraud", source=str(root / "artifacts"), run_id=run.info.run_id)
    return root


@pytest.fixture
def registry_env(
    mlflow_template: Path, tmp_path: Path, dashboard_env: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A copy of the template registry with version 1 as champion (promoted through mlwatch)."""
    from retrain.actions import promote

    shutil.copytree(mlflow_template, tmp_path / "mlflow")
    monkeypatch.setenv("MLWATCH_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    store = Store.open(dashboard_env)
    promote(store, load_settings(), "fraud", "1", actor="setup")
    yield store
    store.close()


def aliases(store: Store) -> dict[str, str]:
    from retrain.registry import Registry

    return Registry.from_settings(load_settings(), store).aliases("fraud")


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_models_page_shows_versions_side_by_side_with_the_champion_first(open_app: Open, registry_env: Store) -> None:
    at = open_app(page=PAGE, service="fraud")
    assert not at.exception
    versions = at.dataframe[0].value
    assert list(versions["version"]) == ["1", "2"]
    assert versions.iloc[0]["aliases"] == "champion"
    assert versions.iloc[1]["f1"] == pytest.approx(0.86)
    history = at.dataframe[1].value
    assert (history.iloc[0]["alias"], history.iloc[0]["to"], history.iloc[0]["by"]) == ("champion", "1", "setup")


def test_promote_moves_the_champion_and_records_who(open_app: Open, registry_env: Store) -> None:
    at = click(open_app(page=PAGE, service="fraud"), "promote")
    at.selectbox(key="promote_version").select("2").run()
    click(at, "confirm_promote")
    assert aliases(registry_env) == {"champion": "2", "previous": "1"}
    entry = registry_env.audit_entries(action="alias.set", target="fraud")[0]
    assert entry.actor == "operator-user"
    assert "Version 2 is now the champion of fraud" in at.success[0].value


def test_rollback_restores_the_previous_champion(open_app: Open, registry_env: Store) -> None:
    from retrain.actions import promote

    promote(registry_env, load_settings(), "fraud", "2", actor="setup")
    at = click(open_app(page=PAGE, service="fraud"), "rollback")
    click(at, "confirm_rollback")
    assert aliases(registry_env)["champion"] == "1"


def test_retrain_queues_one_job_with_the_chosen_mode_and_shows_it(open_app: Open, registry_env: Store) -> None:
    at = click(open_app(page=PAGE, service="fraud"), "retrain")
    at.radio(key="mode").set_value("fine_tune").run()
    click(at, "confirm_retrain")
    [job] = registry_env.list_jobs(service="fraud")
    assert (job.status, job.params["mode"], job.created_by) == ("queued", "fine_tune", "operator-user")
    assert f"Retrain job {job.id} queued" in at.success[0].value
    assert f"Job {job.id}: queued" in at.get("progress")[0].proto.text


def test_viewer_gets_no_retrain_promote_or_rollback(open_app: Open, registry_env: Store) -> None:
    at = open_app(role="viewer", page=PAGE, service="fraud")
    assert not at.exception
    assert not {b.key for b in at.button} & {"retrain", "promote", "rollback"}


def test_a_job_that_ends_refreshes_the_champion_and_says_how_it_ended(open_app: Open, registry_env: Store) -> None:
    from retrain.actions import promote

    at = click(open_app(page=PAGE, service="fraud"), "retrain")
    click(at, "confirm_retrain")
    assert at.metric[0].value == "1"
    job = registry_env.claim_job("worker-1")  # what the worker does with it
    assert job is not None
    promote(registry_env, load_settings(), "fraud", "2", actor="worker")
    result = {"version": "2", "decision": "promote", "reason": "f1 0.86 > 0.80", "champion_version": "1"}
    registry_env.finish_job(job.id, "succeeded", result=result)
    from dashboard import data

    data.jobs.clear()  # its 2 s cache has run out by the fragment's next tick; the registry's 10 s one has not
    at.run()
    assert not at.exception, at.exception
    assert at.metric[0].value == "2"  # the champion tile, outside the live jobs fragment
    assert f"Retrain job {job.id} registered version 2; it is now the champion (was 1)" in at.success[0].value


def test_the_models_page_shows_the_shadow_beside_the_champion_on_the_same_rows(
    open_app: Open, registry_env: Store
) -> None:
    from monitor.records import LabelRecord, ShadowRow

    service = registry_env.get_service("fraud")
    stage = registry_env.start_stage(service, "shadow", "2", champion="1", actor="alice")
    rows = [ShadowRow(f"r-{i}", 100.0, "2", i % 2, None, 1.0, "1", 0) for i in range(4)]
    registry_env.add_shadow_rows(service, stage.id, rows)
    registry_env.add_labels(service, [LabelRecord(f"r-{i}", i % 2, 100.0) for i in range(4)])
    at = open_app(page=PAGE, service="fraud")
    assert not at.exception, at.exception
    assert any(m.value == "**Version 2 in shadow** beside champion 1" for m in at.markdown)
    assert [(m.label, m.value) for m in at.metric if m.label in ("Agreement", "Labelled")] == [
        ("Agreement", "50.0%"),
        ("Labelled", "4"),
    ]
    frames = [d.value for d in at.dataframe]
    compared = next(f for f in frames if "measure" in f.columns).set_index("measure")
    assert (compared.loc["accuracy", "champion"], compared.loc["accuracy", "shadow"]) == (0.5, 1.0)
    listed = next(f for f in frames if "crashes" in f.columns)
    assert (listed.iloc[0]["status"], listed.iloc[0]["by"]) == ("active", "alice")


def test_an_operator_starts_a_canary_with_its_share_and_aborts_it(open_app: Open, registry_env: Store) -> None:
    at = click(open_app(page=PAGE, service="fraud"), "stage")
    at.radio(key="stage_name").set_value("canary").run()
    at.selectbox(key="stage_version").select("2").run()
    at.number_input(key="stage_share").set_value(5.0).run()
    click(at, "confirm_stage")
    service = registry_env.get_service("fraud")
    stage = registry_env.active_stage(service)
    assert stage is not None and (stage.stage, stage.version, stage.details) == ("canary", "2", {"share": 0.05})
    assert stage.actor == "operator-user" and aliases(registry_env)["canary"] == "2"
    assert "Version 2 is in canary beside champion 1" in at.success[0].value
    assert any(m.value.startswith("**Version 2 in canary** (5.0% of requests)") for m in at.markdown)
    health = next(d.value for d in at.dataframe if "latency p95 (ms)" in d.value.columns)
    assert list(health["version"]) == ["2 (canary)", "1 (champion)"] and list(health["requests"]) == [0, 0]
    at = click(at, "abort_stage")
    at.text_input(key="abort_reason").input("wrong features").run()
    click(at, "confirm_abort")
    ended = registry_env.list_stages(service)[0]
    assert (ended.status, ended.reason) == ("aborted", "wrong features")
    assert "canary" not in aliases(registry_env)
    assert at.button(key="abort_stage").proto.disabled  # nothing left to abort


def test_viewer_gets_no_stage_buttons(open_app: Open, registry_env: Store) -> None:
    at = open_app(role="viewer", page=PAGE, service="fraud")
    assert not at.exception
    assert not {b.key for b in at.button} & {"stage", "abort_stage", "confirm_stage", "confirm_abort"}
