"""The dashboard's one data-access module: cached reads of the store and the other capabilities.

Pages never touch the store directly; they call these functions. Reads are cached for a
few seconds (``st.cache_data``), the store and settings for the process
(``st.cache_resource``). Every call goes through ``attempt`` in the pages, so a store or
MLflow failure becomes an ``st.error`` message, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import frames, views
from dashboard.settings import LiveSettings
from dashboard.views import ServiceHealth, TimeWindow
from monitor.config import Settings
from monitor.errors import MlwatchError
from monitor.records import CheckRecord, JobRecord, Service
from monitor.store import Store
from monitor.store.alerts import AlertRecord, SilenceRecord
from monitor.store.outbox import Delivery
from retrain.records import ModelsOverview

if TYPE_CHECKING:
    from retrain.stages import StageView

T = TypeVar("T")
log = logging.getLogger("mlwatch.dashboard")
LIVE_TTL = 10
"""Seconds a read stays cached: short, so live tiles move, long enough that reruns are cheap."""


def settings() -> Settings:
    """The configuration (``MLWATCH_CONFIG`` / ``mlwatch.yaml`` / ``MLWATCH_*``), read again when the file changes."""
    return _live_settings()()


@st.cache_resource(show_spinner=False)
def _live_settings() -> LiveSettings:
    return LiveSettings()


@st.cache_resource(show_spinner=False)
def store() -> Store:
    """The store, opened once per process and shared by every session."""
    return Store.open(settings().store_url)


def attempt(what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """Call ``fn``; on a store, MLflow or configuration failure show ``what`` failed and return None."""
    try:
        return fn(*args, **kwargs)
    except MlwatchError as exc:
        st.error(f"Could not {what}: {exc}")
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        st.error(f"Could not {what}: the store did not answer ({type(cause).__name__}: {cause}). Check `store_url`.")
    except OSError as exc:
        st.error(f"Could not {what}: {exc}")
    except Exception as exc:  # the page must stay usable; the log keeps the traceback
        log.exception("dashboard: could not %s", what)
        st.error(f"Could not {what}: unexpected {type(exc).__name__}: {exc}")
    return None


def zone() -> str:
    """The browser's time zone (UTC when it did not say)."""
    return st.context.timezone or "UTC"


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def service_names() -> list[str]:
    """Names of every registered service."""
    return [s.name for s in store().list_services()]


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def service(name: str) -> Service:
    """The stored service ``name`` (NotFound names the known ones)."""
    return store().get_service(name)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def overview(seconds: float, end: float) -> list[ServiceHealth]:
    """One health row per service over the last ``seconds`` before ``end``, worst first."""
    window = TimeWindow.last(seconds, now=end)
    db = store()
    alerts = views.open_alert_counts(db.list_alerts(state="firing", limit=10_000))
    rows = []
    for svc in db.list_services():
        rows.append(
            views.service_health(
                db,
                svc,
                window,
                check=db.latest_check(svc),
                open_alerts=alerts.get(svc.name, 0),
                champion=views.champion_of(db, svc.name),
                metric=settings().retrain_policy(svc.name).gate.metric,
                drift_share_threshold=drift_threshold(svc.name),
            )
        )
    return views.worst_first(rows)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def stream_consumers(now: float) -> pd.DataFrame:
    """The ``mlwatch consume`` processes heard from within the last hour before ``now``."""
    from monitor.stream.heartbeat import SHOWN_FOR_S

    return frames.consumers_table(store().stream_consumers(since=now - SHOWN_FOR_S))


@st.cache_data(ttl=60, show_spinner=False)
def default_range(now: float) -> str:
    """The time range pages open with (see ``views.default_range``); cached for a minute."""
    db = store()
    return views.default_range(views.first_traffic(db, db.list_services(), now - 86400, now), now)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def drift_threshold(name: str) -> float | None:
    """The drift share over which ``name`` counts as drifted: its ``drift_share`` alert rules' (as the worker
    evaluates them: the configured ones and those set through the API), else None for Evidently's verdict."""
    from monitor.alerts.engine import load_rules

    configured = {r.name: r for r in settings().alerts}
    stored = [r for r in load_rules(store()) if r.name not in configured]  # read only: the worker syncs
    return views.drift_threshold([*configured.values(), *stored], name)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def traffic(name: str, start: float, end: float, bucket_seconds: int) -> pd.DataFrame:
    """Traffic of ``name`` per bucket and model version."""
    db = store()
    return frames.traffic_frame(db.traffic_stats(db.get_service(name), start, end, bucket_seconds, by_version=True))


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def resources(start: float, end: float, bucket_seconds: int, host: str | None = None) -> pd.DataFrame:
    """Agent samples (host, process, GPU) in long form, averaged per chart bucket."""
    return frames.resources_frame(store().host_samples(start, end, host=host), bucket_seconds)


@st.cache_data(ttl=5, show_spinner=False)
def predictions(name: str, limit: int, since: float) -> pd.DataFrame:
    """The newest ``limit`` predictions of ``name`` since a time.

    Asks for the last hour first and widens only when that holds fewer than ``limit``, so a
    busy service does not sort a whole day of rows to show the newest few hundred.
    """
    db = store()
    found = db.get_service(name)
    newest = db.last_prediction_at(found)
    if newest is None:
        return frames.predictions_frame([])
    recent = db.recent_predictions(found, limit, since=max(since, newest - 3600))
    if len(recent) < limit and newest - 3600 > since:
        recent = db.recent_predictions(found, limit, since=since)
    return frames.predictions_frame(recent)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def checks(name: str, since: float | None, limit: int = 500) -> list[CheckRecord]:
    """Checks of ``name``, newest first."""
    db = store()
    return db.list_checks(db.get_service(name), limit=limit, since=since)


@st.cache_data(ttl=300, show_spinner=False, max_entries=20)
def check_report(check_id: int) -> bytes:
    """The Evidently HTML report of a check: the kept one, else rendered now (imports Evidently) and kept."""
    from monitor.drift.report import check_report as report

    return report(store(), check_id)


@st.cache_data(ttl=5, show_spinner=False)
def alerts(state: str | None = None, limit: int = 200) -> list[AlertRecord]:
    """Alerts, newest first, optionally in one state."""
    return store().list_alerts(state=state, limit=limit)


@st.cache_data(ttl=5, show_spinner=False)
def silences(active_at: float | None = None) -> list[SilenceRecord]:
    """Silences, newest first; only those in force at ``active_at`` when given."""
    return store().list_silences(active_at=active_at)


@st.cache_data(ttl=5, show_spinner=False)
def deliveries(receiver: str | None = None, limit: int = 200) -> list[Delivery]:
    """The webhook delivery log, newest first."""
    return store().list_deliveries(receiver=receiver, limit=limit)


def changed() -> None:
    """Forget cached reads after an action, so the next render shows its effect."""
    st.cache_data.clear()


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def models(name: str) -> ModelsOverview:
    """Registry versions, aliases, decisions and alias history of ``name`` (asks MLflow)."""
    from retrain.actions import list_models

    return list_models(store(), settings(), name)


@st.cache_data(ttl=2, show_spinner=False)
def jobs(name: str, limit: int = 20) -> list[JobRecord]:
    """Retrain jobs of ``name``, newest first (short TTL: progress is shown live)."""
    return store().list_jobs(service=name, kind="retrain", limit=limit)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def stages(name: str, limit: int = 10) -> list[StageView]:
    """Rollout stages of ``name``, newest first, the active one compared with the champion."""
    from retrain.stages import stages_view

    return stages_view(store(), settings(), name, limit=limit)
