"""Sections of the alerts page: open alerts with acknowledge and silence, history, silences, webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard import actions, data, frames, session
from dashboard.access import Viewer
from monitor.roles import may
from monitor.store.alerts import AlertRecord
from monitor.store.outbox import Delivery

_TIMES = ["started", "fired", "resolved"]


def open_alerts(viewer: Viewer) -> None:
    """Pending and firing alerts; operators can acknowledge and silence them."""
    found = data.attempt("read alerts", data.alerts, None, 500)
    if found is None:
        return
    active = [a for a in found if a.state != "resolved"]
    if not active:
        st.success("No open alerts.")
        st.caption("Alert rules live under `alerts:` in mlwatch.yaml; the worker evaluates them (`mlwatch worker`).")
        return
    st.dataframe(frames.localize(frames.alerts_table(active), data.zone(), _TIMES), hide_index=True)
    if viewer.can_act:
        handle(viewer, active)


def handle(viewer: Viewer, active: list[AlertRecord]) -> None:
    """Acknowledge or silence the chosen alert."""
    by_id = {a.id: a for a in active}
    chosen = st.selectbox("Alert", list(by_id), format_func=lambda i: _label(by_id[i]), key="alert_choice")
    alert = by_id[chosen]
    left, right = st.columns(2)
    with left, st.form("ack"):
        st.markdown("**Acknowledge** (stops reminders)")
        comment = st.text_input("Comment", key="ack_comment")
        if st.form_submit_button("Acknowledge", disabled=alert.acked_by is not None):
            done = data.attempt(
                "acknowledge", actions.acknowledge, data.store(), data.settings(), viewer, alert.id, comment
            )
            _after(done, f"Alert {alert.id} acknowledged by {viewer.name}.")
    with right, st.form("silence"):
        silence_form(viewer, alert)


def silence_form(viewer: Viewer, alert: AlertRecord) -> None:
    """Silence alerts sharing the chosen labels with ``alert`` until an end time (in the browser's zone)."""
    st.markdown("**Silence** (no notifications until the end time)")
    labels = actions.silence_matchers(alert, actions.SILENCE_LABELS)
    keys = st.multiselect("Match labels", list(labels), default=[k for k in ("rule", "service") if k in labels])
    zone = ZoneInfo(data.zone())
    default_end = datetime.now(zone) + timedelta(hours=2)
    day = st.date_input("Until (date)", value=default_end.date(), key="silence_day")
    hour = st.time_input("Until (time)", value=default_end.time().replace(second=0, microsecond=0), key="silence_time")
    comment = st.text_input("Comment", key="silence_comment")
    if st.form_submit_button("Silence"):
        ends_at = datetime.combine(day, hour, tzinfo=zone).timestamp()
        matchers = {k: labels[k] for k in keys}
        done = data.attempt("silence", actions.silence, data.store(), viewer, matchers, ends_at, comment)
        _after(done, f"Silenced {', '.join(f'{k}={v}' for k, v in matchers.items())} until {day} {hour}.")


def recent_alerts() -> None:
    """Every alert, newest first."""
    found = data.attempt("read alerts", data.alerts, None, 500)
    if found is None:
        return
    if not found:
        st.info("No alerts yet.")
        return
    st.dataframe(frames.localize(frames.alerts_table(found), data.zone(), _TIMES), hide_index=True)


def silences(viewer: Viewer) -> None:
    """Silences in force and past; operators can end one now."""
    found = data.attempt("read silences", data.silences)
    if found is None:
        return
    if not found:
        st.info("No silences. Silence an open alert from the Open tab.")
        return
    st.dataframe(frames.localize(frames.silences_table(found), data.zone(), ["starts", "ends"]), hide_index=True)
    now = time.time()
    active = [s.id for s in found if s.active(now)]
    if viewer.can_act and active:
        chosen = st.selectbox("Silence in force", active, key="silence_choice")
        if st.button("End silence now", key="end_silence"):
            done = data.attempt("end the silence", actions.end_silence, data.store(), viewer, chosen)
            _after(done, f"Silence {chosen} ended.")


def webhooks(viewer: Viewer) -> None:
    """The delivery log per receiver, and a test event (admins)."""
    hooks = [h.name for h in data.settings().webhooks]
    if not hooks:
        st.info("No webhooks configured. Add one under `webhooks:` in mlwatch.yaml (format json or slack).")
    receiver = st.selectbox("Receiver", ["all", *hooks], key="webhook_choice")
    if may(viewer.role, "admin") and receiver != "all" and st.button("Send test event", key="send_test"):
        sent = data.attempt(
            "send a test event", actions.send_test_event, data.store(), data.settings(), viewer, receiver
        )
        _after(sent, f"Test event {sent} queued for {receiver}; the worker delivers it.")
    found = data.attempt("read the delivery log", data.deliveries, None if receiver == "all" else receiver, 300)
    if found is None:
        return
    if not found:
        st.info("Nothing delivered yet.")
        return
    times = ["created", "delivered", "next attempt"]
    st.dataframe(frames.localize(frames.deliveries_table(found), data.zone(), times), hide_index=True)
    attempts(found)


def attempts(found: list[Delivery]) -> None:
    """Every attempt of the delivery chosen from the log: start, HTTP status, latency and error."""
    by_id = {d.id: d for d in found}
    choice = st.selectbox(
        "Attempts of delivery", list(by_id), format_func=_delivery_label(by_id), key="delivery_choice"
    )
    chosen = by_id[choice]
    if not chosen.attempt_log:
        st.caption("Not tried yet: the worker sends due deliveries every second (`mlwatch worker`).")
        return
    st.dataframe(frames.localize(frames.attempts_table(chosen), data.zone(), ["started"]), hide_index=True)
    if chosen.attempts > len(chosen.attempt_log):
        st.caption(
            f"The newest {len(chosen.attempt_log)} of {chosen.attempts} attempts; "
            f"GET /v1/webhooks/deliveries/{chosen.id} lists every one."
        )


def _after(done: object, message: str) -> None:
    if done is None:
        return  # attempt() already showed why
    data.changed()
    session.flash(message)
    st.rerun()


def _delivery_label(by_id: dict[int, Delivery]) -> Callable[[int], str]:
    def label(delivery_id: int) -> str:
        d = by_id[delivery_id]
        return f"#{d.id} {d.event_type} → {d.receiver} ({d.status}, {d.attempts} tries)"

    return label


def _label(alert: AlertRecord) -> str:
    where = f" · {alert.service}" if alert.service else ""
    return f"#{alert.id} {alert.severity} {alert.rule}{where} ({alert.state})"
