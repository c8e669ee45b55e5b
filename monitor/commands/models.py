"""``mlwatch retrain``, ``mlwatch promote``, ``mlwatch rollback`` and ``mlwatch serve``.

The same actions as the dashboard buttons and the API (``retrain.actions``): a retrain
queues a job for the worker; promote and rollback move the registry aliases, audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

import click

from monitor.commands import settings_from
from monitor.errors import MlwatchError

T = TypeVar("T")


@contextmanager
def _store(ctx: click.Context) -> Iterator[tuple[Any, Any]]:
    from monitor.store import Store

    settings = settings_from(ctx)
    try:
        store = Store.open(settings.store_url)
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield store, settings
    finally:
        store.close()


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.argument("service")
@click.option("--fine-tune", is_flag=True, help="Continue training the champion instead of starting over.")
@click.option(
    "--wait", is_flag=True, help="Wait for the job to finish (progress and log on stderr), then print its outcome."
)
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait with --wait.")
@click.pass_context
def retrain(ctx: click.Context, service: str, fine_tune: bool, wait: bool, timeout: float) -> None:
    """Queue a retrain of SERVICE for the worker (or join the one already active)."""
    from retrain.actions import request_retrain

    with _store(ctx) as (store, settings):
        mode = "fine_tune" if fine_tune else None
        job, created = _run(lambda: request_retrain(store, settings, service, mode=mode, actor="cli"))
        click.echo(f"job {job.id} {'queued' if created else 'already ' + job.status} for {service}")
        if wait:
            _wait(store, job.id, timeout, job.status)


def _wait(store: Any, job_id: int, timeout: float, status: str, poll: float = 1.0) -> None:
    """Poll job ``job_id`` (last said to be ``status``) until it ends, showing its progress."""
    deadline = time.monotonic() + timeout
    follow = JobLog(status)
    job = store.get_job(job_id)
    follow.show(job)
    while job.active and time.monotonic() < deadline:
        time.sleep(poll)
        job = store.get_job(job_id)
        follow.show(job)
    if job.active:
        raise click.ClickException(
            f"job {job_id} still {job.status} after {timeout:.0f}s (is `mlwatch worker` running?)"
        )
    click.echo(json.dumps({"job_id": job.id, "status": job.status, "result": job.result, "error": job.error}, indent=2))
    if job.status != "succeeded":
        raise click.ClickException(f"job {job_id} {job.status}: {job.error}")


class JobLog:
    """Echoes a waited-for job's status changes and new log lines to stderr (stdout keeps the result).

    The store keeps only the tail of a job's log, so new lines are those after the last one
    shown (each starts with its time, which keeps them apart), not an offset into the text.
    """

    def __init__(self, status: str) -> None:
        self.status = status
        self.last: str | None = None

    def show(self, job: Any) -> None:
        """Echo what changed since the last call: ``job 3 running on w1``, ``[ 60%] 12:00:07 ...``."""
        moved, self.status = job.status != self.status, job.status
        where = f" on {job.claimed_by}" if job.claimed_by and job.status == "running" else ""
        if moved and job.active:  # started: before its lines; ended: after them
            click.echo(f"job {job.id} {job.status}{where}", err=True)
        for line in self.new_lines(job.log):
            click.echo(f"[{job.progress:4.0%}] {line}", err=True)
        if moved and not job.active:
            click.echo(f"job {job.id} {job.status}", err=True)

    def new_lines(self, log: str) -> list[str]:
        """Lines of ``log`` after the last one shown (all of them when it scrolled out of the tail)."""
        lines = [line for line in log.splitlines() if line.strip()]
        if self.last in lines:
            lines = lines[len(lines) - lines[::-1].index(self.last) :]
        if lines:
            self.last = lines[-1]
        return lines


@click.command()
@click.argument("service")
@click.argument("version")
@click.option("--reason", default="manual promotion", show_default=True)
@click.pass_context
def promote(ctx: click.Context, service: str, version: str, reason: str) -> None:
    """Make VERSION the champion of SERVICE (the old champion becomes 'previous')."""
    from retrain.actions import promote as promote_version

    with _store(ctx) as (store, settings):
        done = _run(lambda: promote_version(store, settings, service, version, actor="cli", reason=reason))
        click.echo(json.dumps(asdict(done)))


@click.command()
@click.argument("service")
@click.option("--reason", default="manual rollback", show_default=True)
@click.pass_context
def rollback(ctx: click.Context, service: str, reason: str) -> None:
    """Swap the champion and previous versions of SERVICE."""
    from retrain.actions import rollback as rollback_model

    with _store(ctx) as (store, settings):
        done = _run(lambda: rollback_model(store, settings, service, actor="cli", reason=reason))
        click.echo(json.dumps(asdict(done)))


@click.command()
@click.argument("service")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5001, show_default=True)
@click.option("--poll-interval", type=float, default=5.0, show_default=True, help="Seconds between alias checks.")
@click.option("--log-level", default="warning", show_default=True)
@click.option(
    "--probabilities/--no-probabilities",
    default=True,
    show_default=True,
    help="Log class probabilities of classifiers that give them (a second pass over each request's rows).",
)
@click.pass_context
def serve(
    ctx: click.Context, service: str, host: str, port: int, poll_interval: float, log_level: str, probabilities: bool
) -> None:
    """Serve models:/<model>@champion of SERVICE over HTTP, hot-swapping on promotion."""
    from retrain.serving import run_server

    with _store(ctx) as (store, settings):
        _run(
            lambda: run_server(
                store,
                settings,
                service,
                host=host,
                port=port,
                poll_interval=poll_interval,
                log_level=log_level,
                probabilities=probabilities,
            )
        )
