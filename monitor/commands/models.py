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
@click.option("--wait", is_flag=True, help="Wait for the job to finish and print its outcome.")
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
            _wait(store, job.id, timeout)


def _wait(store: Any, job_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    job = store.get_job(job_id)
    while job.active and time.monotonic() < deadline:
        time.sleep(1.0)
        job = store.get_job(job_id)
    if job.active:
        raise click.ClickException(
            f"job {job_id} still {job.status} after {timeout:.0f}s (is `mlwatch worker` running?)"
        )
    click.echo(json.dumps({"job_id": job.id, "status": job.status, "result": job.result, "error": job.error}, indent=2))
    if job.status != "succeeded":
        raise click.ClickException(f"job {job_id} {job.status}: {job.error}")


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
