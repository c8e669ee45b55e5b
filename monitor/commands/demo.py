"""``mlwatch demo``: the whole loop locally on embedded defaults."""

from __future__ import annotations

import os
import secrets

import click

from monitor.commands import settings_from


@click.command()
@click.option("--speed", type=float, default=60.0, show_default=True, help="Time compression factor.")
@click.option("--minutes", type=float, default=None, help="Stop after this many wall-clock minutes.")
@click.option("--no-browser", is_flag=True, help="Do not open the dashboard in a browser.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port of the API server.")
@click.pass_context
def demo(ctx: click.Context, speed: float, minutes: float | None, no_browser: bool, port: int) -> None:
    """Run mlwatch locally on an embedded SQLite store and print the URLs and an admin token."""
    import uvicorn

    from monitor.server.app import create_app
    from monitor.store import Store

    settings = settings_from(ctx)
    token = settings.bootstrap_token or os.environ.get("MLWATCH_BOOTSTRAP_TOKEN") or f"mlw_{secrets.token_urlsafe(24)}"
    settings = settings.model_copy(update={"bootstrap_token": token})
    store = Store.open(settings.store_url)
    click.echo(f"mlwatch demo: store {settings.store_url}")
    click.echo(f"  API       http://127.0.0.1:{port}  (OpenAPI at /docs)")
    click.echo(f"  token     {token}  (admin)")
    click.echo("Press Ctrl-C to stop.")
    uvicorn.run(create_app(settings, store), host="127.0.0.1", port=port, log_level="warning")
