"""``mlwatch server``: the ingest/query API."""

from __future__ import annotations

import os

import click

from monitor.commands import settings_from, use_interactive_mlflow_budget


@click.command()
@click.option("--host", default=None, help="Interface to listen on (default: server_host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: server_port, 8000; 0 picks a free one).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--log-level", default="warning", show_default=True)
@click.pass_context
def server(ctx: click.Context, host: str | None, port: int | None, workers: int, log_level: str) -> None:
    """Serve the ingest and query API over the local store (store_url); MLWATCH_URL is where clients find it."""
    import uvicorn

    settings = settings_from(ctx)
    config = (ctx.find_root().obj or {}).get("config")
    if config:
        os.environ["MLWATCH_CONFIG"] = os.path.abspath(config)  # read again by each worker process
    use_interactive_mlflow_budget()  # inherited by the worker processes
    uvicorn.run(
        "monitor.server.app:app_from_environment",
        factory=True,
        host=host or settings.server_host,
        port=settings.server_port if port is None else port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )
