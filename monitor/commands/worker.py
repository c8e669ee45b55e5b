"""``mlwatch worker``: scheduled checks, alert evaluation, webhook delivery, retrain jobs."""

from __future__ import annotations

import logging
import os
import signal
import socket

import click

from monitor.commands import settings_from


@click.command()
@click.option("--poll", type=float, default=0.5, show_default=True, help="Seconds between scheduler ticks.")
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def worker(ctx: click.Context, poll: float, log_level: str) -> None:
    """Run the worker until SIGINT or SIGTERM; runs against the local store (store_url), not MLWATCH_URL."""
    from monitor.store import Store
    from monitor.worker import Worker, WorkerContext, load_tasks

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = settings_from(ctx)
    context = WorkerContext(settings, Store.open(settings.store_url), name=f"{socket.gethostname()}:{os.getpid()}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: context.stop.set())
    Worker(context, load_tasks(context)).run_forever(poll)
    context.store.close()
