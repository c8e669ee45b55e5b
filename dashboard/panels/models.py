"""Sections of the models page: versions, history, jobs with live progress, and the action dialogs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import actions, data, model_tables, session
from dashboard.access import Viewer
from dashboard.frames import localize
from monitor.records import JobRecord, StageRecord
from retrain.canary import Health
from retrain.records import ModelsOverview

JOB_REFRESH_SECONDS = 2
DIALOG_KEY = "models_dialog"
WATCHED_KEY = "models_watched_jobs"
_MODES = {"retrain": "Retrain from scratch", "fine_tune": "Fine-tune the champion"}


def registry(service: str) -> ModelsOverview | None:
    """Versions with metrics side by side, gate decisions and alias history; None when unreadable."""
    models = data.attempt("read the model registry", data.models, service)
    if models is None:
        return None
    a, b, c = st.columns(3)
    a.metric("Champion", models.champion or "none")
    b.metric("Previous (rollback target)", models.previous or "none")
    c.metric("Registered versions", len(models.versions))
    if not models.versions:
        st.info(
            f"No versions of MLflow model `{models.model_name}` yet. Start a retrain below, or register one "
            f"in MLflow and promote it with `mlwatch promote {service} VERSION`."
        )
        return models
    metric = data.settings().retrain_policy(service).gate.metric
    st.markdown(f"**Versions** (gate metric: `{metric}`)")
    table = model_tables.versions_table(models, metric)
    st.dataframe(_local(table, ["created"]), hide_index=True, key="versions_table")
    history, decisions = st.tabs(["Alias history", "Gate decisions"])
    with history:
        st.dataframe(_local(model_tables.history_table(models.history), ["when"]), hide_index=True)
    with decisions:
        st.dataframe(_local(model_tables.decisions_table(models.decisions), ["when"]), hide_index=True)
    return models


@st.fragment(run_every=JOB_REFRESH_SECONDS)
def jobs(service: str) -> None:
    """Retrain jobs of ``service``; the active one's progress and log tail, refreshed until it ends."""
    found = data.attempt("read jobs", data.jobs, service)
    if found is None:
        return
    if not found:
        st.caption("No retrain jobs yet.")
        return
    active = next((j for j in found if j.active), None)
    if active is not None:
        progress(active)
    ended = finished_since_seen(found)
    if ended:
        # The registry tiles and dialogs live outside this fragment: clear the cached reads and
        # rerun the whole page so the new champion shows, with the outcome on top.
        data.changed()
        session.flash(" ".join(model_tables.job_outcome(j) for j in ended))
        st.rerun(scope="app")
    st.dataframe(_local(model_tables.jobs_table(found), ["created", "finished"]), hide_index=True, key="jobs_table")


def finished_since_seen(found: list[JobRecord]) -> list[JobRecord]:
    """Jobs this session saw active that have ended since; remembers the active ones for next time."""
    watched: set[int] = st.session_state.setdefault(WATCHED_KEY, set())
    ended = [j for j in found if j.id in watched and not j.active]
    watched.difference_update(j.id for j in ended)
    watched.update(j.id for j in found if j.active)
    return ended


def progress(job: JobRecord) -> None:
    """A progress bar and the log tail of a queued or running job."""
    waiting = " (waiting for `mlwatch worker` to pick it up)" if job.status == "queued" else ""
    st.progress(job.progress, text=f"Job {job.id}: {job.status} {job.progress:.0%}{waiting}")
    if job.log:
        st.code("\n".join(job.log.splitlines()[-12:]), language=None)


def buttons(viewer: Viewer, service: str, models: ModelsOverview | None) -> None:
    """Retrain, Promote, Rollback, Shadow or canary, and Abort stage, each opening a
    confirmation dialog (operators and admins only)."""
    if not viewer.can_act:
        st.caption(f"Signed in as a {viewer.role}: retrain, promote, rollback and stages need an operator.")
        return
    a, b, c, d, e = st.columns(5)
    candidates = [v.version for v in models.versions if v.version != models.champion] if models else []
    no_previous = models is None or models.previous is None
    staged = models is not None and models.stage is not None
    a.button("Retrain…", icon=":material/model_training:", key="retrain", on_click=_open, args=("retrain", service))
    b.button("Promote…", icon=":material/upgrade:", key="promote", disabled=not candidates, on_click=_open,
             args=("promote", service))  # fmt: skip
    c.button("Rollback…", icon=":material/undo:", key="rollback", disabled=no_previous, on_click=_open,
             args=("rollback", service))  # fmt: skip
    no_stage = not candidates or staged or models is None or models.champion is None
    d.button("Shadow or canary…", icon=":material/call_split:", key="stage", disabled=no_stage, on_click=_open,
             args=("stage", service))  # fmt: skip
    e.button("Abort stage…", icon=":material/block:", key="abort_stage", disabled=not staged, on_click=_open,
             args=("abort_stage", service))  # fmt: skip
    opened = st.session_state.get(DIALOG_KEY)
    if opened == ("retrain", service):
        confirm_retrain(viewer, service)
    elif opened == ("promote", service):
        confirm_promote(viewer, service, candidates)
    elif opened == ("rollback", service):
        confirm_rollback(viewer, service, models)
    elif opened == ("stage", service):
        confirm_stage(viewer, service, candidates)
    elif opened == ("abort_stage", service) and models is not None and models.stage is not None:
        confirm_abort(viewer, service, models.stage.stage, models.stage.version)


def _open(name: str, service: str) -> None:
    # The open dialog is kept in session state so that widgets inside it survive reruns.
    st.session_state[DIALOG_KEY] = (name, service)


def _close() -> None:
    st.session_state.pop(DIALOG_KEY, None)


@st.dialog("Retrain", on_dismiss=_close)
def confirm_retrain(viewer: Viewer, service: str) -> None:
    """Confirm a retrain job and choose its mode."""
    default = data.settings().retrain_policy(service).mode
    mode = st.radio("Mode", list(_MODES), index=list(_MODES).index(default), format_func=_MODES.get, key="mode")
    st.write(f"A worker trains a challenger for **{service}**; the gate decides whether it replaces the champion.")
    if st.button("Start retrain", type="primary", key="confirm_retrain"):
        done = data.attempt("start the retrain", actions.retrain, data.store(), data.settings(), viewer, service, mode)
        if done is not None:
            job, created = done
            note = "queued" if created else "already active; showing it"
            _after(f"Retrain job {job.id} {note} ({mode}).")


@st.dialog("Promote", on_dismiss=_close)
def confirm_promote(viewer: Viewer, service: str, candidates: list[str]) -> None:
    """Confirm which version becomes champion."""
    version = st.selectbox("Version", candidates, key="promote_version")
    st.write(f"Version **{version}** will serve **{service}**; the current champion becomes `previous`.")
    if st.button(f"Promote version {version}", type="primary", key="confirm_promote"):
        done = data.attempt("promote", actions.promote, data.store(), data.settings(), viewer, service, version)
        if done is not None:
            _after(f"Version {done.champion} is now the champion of {service} (previous: {done.previous}).")


@st.dialog("Rollback", on_dismiss=_close)
def confirm_rollback(viewer: Viewer, service: str, models: ModelsOverview | None) -> None:
    """Confirm swapping champion and previous."""
    previous = models.previous if models else None
    st.write(f"Version **{previous}** will serve **{service}** again; the current champion becomes `previous`.")
    if st.button("Roll back", type="primary", key="confirm_rollback"):
        done = data.attempt("roll back", actions.rollback, data.store(), data.settings(), viewer, service)
        if done is not None:
            _after(f"Rolled back: version {done.champion} is the champion of {service} again.")


@st.dialog("Shadow or canary", on_dismiss=_close)
def confirm_stage(viewer: Viewer, service: str, candidates: list[str]) -> None:
    """Confirm which version goes in shadow or canary, and a canary's share of requests."""
    stage = st.radio("Stage", ["shadow", "canary"], key="stage_name", horizontal=True)
    version = st.selectbox("Version", candidates, key="stage_version")
    share = None
    if stage == "canary":
        default = data.settings().retrain_policy(service).canary.share
        percent = st.number_input("Share of requests (%)", 0.1, 99.9, default * 100, step=1.0, key="stage_share")
        share = percent / 100
        st.write(
            f"Version **{version}** answers {percent:g}% of **{service}**'s requests; a breached guard rolls it back."
        )
    else:
        st.write(f"Version **{version}** is scored beside the champion on every request and never answers.")
    if st.button(f"Start the {stage}", type="primary", key="confirm_stage"):
        done = data.attempt(
            f"start the {stage}",
            actions.start_stage,
            data.store(),
            data.settings(),
            viewer,
            service,
            version,
            stage,
            share,
        )
        if done is not None:
            _after(f"Version {done.version} is in {done.stage} beside champion {done.champion_version}.")


@st.dialog("Abort stage", on_dismiss=_close)
def confirm_abort(viewer: Viewer, service: str, stage: str, version: str) -> None:
    """Confirm ending the stage in progress, with a reason for the record."""
    reason = st.text_input("Reason", "aborted from the dashboard", max_chars=2000, key="abort_reason")
    st.write(f"Version **{version}** leaves {stage}; the champion serves every request.")
    if st.button(f"Abort the {stage}", type="primary", key="confirm_abort"):
        done = data.attempt(
            "abort the stage", actions.abort_stage, data.store(), data.settings(), viewer, service, reason
        )
        if done is not None:
            _after(f"The {done.stage} of version {done.version} is aborted.")


def _after(message: str) -> None:
    _close()
    data.changed()
    session.flash(message)
    st.rerun()


def _local(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return localize(frame, data.zone(), columns)


def canary_health(stage: StageRecord, health: Health) -> None:
    """A canary's live numbers beside the champion's since it started, and what breached."""
    share = float(stage.details.get("share") or 0.0)
    st.markdown(
        f"**Version {stage.version} in canary** ({share:.1%} of requests) beside champion {stage.champion_version}"
    )
    st.dataframe(model_tables.health_table(health), hide_index=True, key="canary_health")
    if health.breaches:
        st.warning("Breached (rolled back at the worker's next review): " + "; ".join(health.breaches))
    else:
        judged = ", ".join(health.judged) or "nothing yet (too few requests)"
        st.caption(f"Guards judged so far: {judged}.")


def stages(service: str) -> None:
    """The challenger in a rollout stage, beside the champion on the same rows, and past stages."""
    found = data.attempt("read rollout stages", data.stages, service)
    if found is None:
        return
    if not found:
        st.caption(
            f"No challenger has been in shadow or canary yet: `mlwatch stage start {service} VERSION` "
            "starts one, or the buttons above."
        )
        return
    active = next((v for v in found if v.stage.active), None)
    if active is not None and active.health is not None:
        canary_health(active.stage, active.health)
    if active is not None and active.comparison is not None:
        stage, compared = active.stage, active.comparison
        st.markdown(f"**Version {stage.version} in {stage.stage}** beside champion {stage.champion_version}")
        a, b, c = st.columns(3)
        a.metric("Requests scored by both", compared.rows)
        b.metric("Agreement", "-" if compared.agreement is None else f"{compared.agreement:.1%}")
        c.metric("Labelled", compared.labelled)
        st.dataframe(model_tables.comparison_table(compared), hide_index=True, key="shadow_comparison")
        if compared.verdict is not None:
            st.caption(f"Gate on the labelled rows: {compared.verdict.reason}")
    table = model_tables.stages_table([v.stage for v in found])
    st.dataframe(_local(table, ["started", "ended"]), hide_index=True, key="stages_table")
