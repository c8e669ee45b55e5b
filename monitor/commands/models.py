"""``mlwatch retrain``, ``mlwatch promote``, ``mlwatch rollback`` and ``mlwatch serve``.

Retrain, promote and rollback are the dashboard's buttons from the shell: they ask the API
(``monitor.commands.api``: ``--url``/``MLWATCH_URL``, ``--token``/``MLWATCH_TOKEN``, an
operator's role), which calls ``retrain.actions``. A retrain queues a job for the worker;
promote and rollback move the registry aliases, audited under the token's name.
``serve`` runs on this machine, against the local store.

    $ mlwatch retrain credit --wait
    $ mlwatch promote credit 7
    {"service": "credit", "model_name": "credit", "champion": "7", "previous": "6", ...}
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from monitor.commands import settings_from
from monitor.commands.api import Api, api_options, connect, path_part
from monitor.errors import MlwatchError

T = TypeVar("T")
ACTIVE = ("queued", "running")
"""Job statuses that may still change (``retrain.records.ACTIVE_STATUSES``)."""


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


@dataclass(frozen=True)
class JobView:
    """A job as ``GET /v1/jobs/{id}`` answers it: what following its progress needs."""

    id: int
    status: str
    progress: float
    log: str
    claimed_by: str | None
    result: dict[str, Any] | None
    error: str | None

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobView:
        """The view of the API's job object."""
        return cls(
            id=int(job["job_id"]),
            status=str(job["status"]),
            progress=float(job["progress"]),
            log=str(job["log"]),
            claimed_by=job.get("claimed_by"),
            result=job["result"],
            error=job["error"],
        )


@click.command()
@click.argument("service")
@click.option("--fine-tune", is_flag=True, help="Continue training the champion instead of starting over.")
@click.option(
    "--wait", is_flag=True, help="Wait for the job to finish (progress and log on stderr), then print its outcome."
)
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait with --wait.")
@api_options
@click.pass_context
def retrain(
    ctx: click.Context,
    service: str,
    fine_tune: bool,
    wait: bool,
    timeout: float,
    url: str | None,
    api_token: str | None,
) -> None:
    """Queue a retrain of SERVICE for the worker (or join the one already active), through the API."""
    with connect(ctx, url, api_token) as api:
        body = {"mode": "fine_tune"} if fine_tune else {}
        queued = api.call("POST", f"/v1/services/{path_part(service)}/retrain", json=body)
        status = queued["status"]
        click.echo(f"job {queued['job_id']} {'queued' if queued['created'] else 'already ' + status} for {service}")
        if wait:
            _wait(api, int(queued["job_id"]), timeout, status)


def _wait(api: Api, job_id: int, timeout: float, status: str, poll: float = 1.0) -> None:
    """Poll job ``job_id`` (last said to be ``status``) until it ends, showing its progress."""
    deadline = time.monotonic() + timeout
    follow = JobLog(status)
    job = JobView.of(api.call("GET", f"/v1/jobs/{job_id}"))
    follow.show(job)
    while job.active and time.monotonic() < deadline:
        time.sleep(poll)
        job = JobView.of(api.call("GET", f"/v1/jobs/{job_id}"))
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

    def show(self, job: JobView) -> None:
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
@api_options
@click.pass_context
def promote(
    ctx: click.Context, service: str, version: str, reason: str, url: str | None, api_token: str | None
) -> None:
    """Make VERSION the champion of SERVICE (the old champion becomes 'previous'), through the API."""
    with connect(ctx, url, api_token) as api:
        body = {"version": version, "reason": reason}
        click.echo(json.dumps(api.call("POST", f"/v1/services/{path_part(service)}/promote", json=body)))


@click.command()
@click.argument("service")
@click.option("--reason", default="manual rollback", show_default=True)
@api_options
@click.pass_context
def rollback(ctx: click.Context, service: str, reason: str, url: str | None, api_token: str | None) -> None:
    """Swap the champion and previous versions of SERVICE, through the API."""
    with connect(ctx, url, api_token) as api:
        done = api.call("POST", f"/v1/services/{path_part(service)}/rollback", json={"reason": reason})
        click.echo(json.dumps(done))


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
@click.option(
    "--shadow/--no-shadow",
    default=True,
    show_default=True,
    help="Score the version the service has in shadow beside the champion (off the request path).",
)
@click.option(
    "--shadow-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds one model call of the shadow may run; past it the shadow is stopped and its stage ends as crashed.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    service: str,
    host: str,
    port: int,
    poll_interval: float,
    log_level: str,
    probabilities: bool,
    shadow: bool,
    shadow_timeout: float,
) -> None:
    """Serve models:/<model>@champion of SERVICE over HTTP, hot-swapping on promotion.

    Runs against the local store (store_url), not MLWATCH_URL.
    """
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
                shadow=shadow,
                shadow_timeout=shadow_timeout,
            )
        )
