"""The jobs and decisions store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from monitor.config import Settings
from monitor.errors import Conflict, NotFound, ValidationFailed
from monitor.store import Store
from retrain.actions import request_retrain
from tests.retrain.scenario import register


def _race(n: int, fn) -> list:  # type: ignore[no-untyped-def]
    results: list = []
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait()
        results.append(fn())

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_retrain_clicks_make_one_job(store: Store) -> None:
    register(store)
    first, created = request_retrain(store, Settings(), "credit", actor="alice")
    second, again = request_retrain(store, Settings(), "credit", actor="bob")
    assert (created, again) == (True, False)
    assert second.id == first.id and second.status == "queued"
    assert [e.details["job_id"] for e in store.audit_entries(action="retrain.request")] == [first.id]


def test_concurrent_retrain_requests_make_one_job(store: Store) -> None:
    register(store)
    results = _race(6, lambda: request_retrain(store, Settings(), "credit", actor="race"))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(store.list_jobs(service="credit")) == 1


def test_a_finished_job_lets_a_new_one_be_queued(store: Store) -> None:
    register(store)
    first, _ = request_retrain(store, Settings(), "credit", actor="alice")
    store.finish_job(first.id, "failed", error="boom")
    second, created = request_retrain(store, Settings(), "credit", actor="alice", mode="fine_tune")
    assert created and second.id != first.id and second.params["mode"] == "fine_tune"


def test_retrain_request_names_bad_mode_and_unknown_service(store: Store) -> None:
    register(store)
    with pytest.raises(ValidationFailed, match="mode: expected one of retrain, fine_tune"):
        request_retrain(store, Settings(), "credit", mode="boost", actor="a")
    with pytest.raises(NotFound, match="unknown service 'nope'"):
        request_retrain(store, Settings(), "nope", actor="a")


def test_each_queued_job_is_claimed_by_exactly_one_worker(store: Store) -> None:
    for name in ("a", "b", "c"):
        register(store, name)
        store.enqueue_job("retrain", name, {"mode": "retrain"}, "t")
    claimed = _race(6, lambda: store.claim_job(f"w-{threading.get_ident()}"))
    jobs = [j for j in claimed if j is not None]
    assert sorted(j.service for j in jobs) == ["a", "b", "c"]
    assert all(j.status == "running" and j.claimed_by for j in jobs)
    assert store.claim_job("late") is None


def test_progress_appends_to_the_log_and_reports_a_cancel_request(store: Store) -> None:
    register(store)
    job, _ = store.enqueue_job("retrain", "credit", {}, "t")
    store.claim_job("w")
    assert store.job_progress(job.id, progress=0.4, line="training") is False
    store.cancel_job(job.id)
    assert store.job_progress(job.id, progress=1.7, line="still going") is True
    seen = store.get_job(job.id)
    assert seen.progress == 1.0 and seen.status == "running" and seen.cancel_requested
    assert "training\n" in seen.log and seen.log.rstrip().endswith("still going")


def test_cancel_of_a_queued_job_is_immediate_and_a_finished_job_refuses(store: Store) -> None:
    register(store)
    job, _ = store.enqueue_job("retrain", "credit", {}, "t")
    cancelled = store.cancel_job(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(Conflict, match="already cancelled"):
        store.cancel_job(job.id)
    with pytest.raises(NotFound, match="unknown job 999"):
        store.cancel_job(999)


def test_a_finished_job_keeps_its_first_outcome(store: Store) -> None:
    register(store)
    job, _ = store.enqueue_job("retrain", "credit", {}, "t")
    store.claim_job("w")
    store.finish_job(job.id, "cancelled", error="stopped")
    after = store.finish_job(job.id, "succeeded", result={"version": "3"})
    assert (after.status, after.result, after.error) == ("cancelled", None, "stopped")


def test_jobs_of_a_silent_worker_are_failed(store: Store) -> None:
    register(store)
    job, _ = store.enqueue_job("retrain", "credit", {}, "t")
    store.claim_job("w", now=1000.0)
    assert store.fail_stale_jobs(90, now=1050.0) == []
    assert store.fail_stale_jobs(90, now=1100.0) == [job.id]
    failed = store.get_job(job.id)
    assert failed.status == "failed" and "stopped reporting" in str(failed.error)


def test_decisions_are_listed_newest_first_with_their_numbers(store: Store) -> None:
    for version, decision in (("1", "promote"), ("2", "reject")):
        store.add_decision(
            service="credit",
            model_name="m",
            version=version,
            job_id=None,
            decision=decision,
            metrics={"challenger": {"f1": 0.5}},
            reason="r",
        )
    listed = store.list_decisions("credit")
    assert [(d.version, d.decision) for d in listed] == [("2", "reject"), ("1", "promote")]
    assert listed[0].metrics == {"challenger": {"f1": 0.5}}
    with pytest.raises(ValidationFailed, match="decision: expected one of promote, reject, pending"):
        store.add_decision(
            service="c", model_name="m", version="1", job_id=None, decision="maybe", metrics={}, reason=""
        )
