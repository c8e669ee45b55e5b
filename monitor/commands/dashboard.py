"""``mlwatch dashboard`` (the Streamlit UI) and ``mlwatch user hash`` (dashboard logins)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from monitor.commands import settings_from, use_interactive_mlflow_budget
from monitor.errors import ConfigError


def streamlit_argv(app: Path, host: str, port: int) -> list[str]:
    """The command line that serves ``app`` headless on ``host:port`` (an ``st.App`` file runs under uvicorn)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
        "--theme.base=light",
    ]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port.")
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int) -> None:
    """Serve the Streamlit dashboard (it reads the same configuration and store as the server).

    Runs against the local store (store_url), not MLWATCH_URL.
    """
    import dashboard as package
    from dashboard.signins import session_key

    settings = settings_from(ctx)  # fail here, with the message, rather than inside Streamlit
    try:
        session_key(settings)  # likewise a dashboard_secret that is too short; none set warns
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    env = dict(os.environ, MLWATCH_STORE_URL=settings.store_url)
    use_interactive_mlflow_budget(env)
    config = (ctx.find_root().obj or {}).get("config")
    if config:
        env["MLWATCH_CONFIG"] = os.path.abspath(config)
    app = Path(package.__file__).parent / "server.py"  # Streamlit's pages plus the sign-in routes
    click.echo(f"mlwatch dashboard: http://{host}:{port}  (store {settings.store_url})", err=True)
    argv = streamlit_argv(app, host, port)
    os.execve(sys.executable, argv, env)


@click.group()
def user() -> None:
    """Manage dashboard logins (``users`` in mlwatch.yaml)."""


@user.command("hash")
def user_hash() -> None:
    """Print the argon2id hash of a password (prompted for, or one line on stdin) for mlwatch.yaml.

    \b
        $ mlwatch user hash
        $ printf '%s\\n' "$PASSWORD" | mlwatch user hash
    """
    from dashboard.passwords import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("expected a non-empty password on stdin or at the prompt")
    click.echo(hash_password(password))
