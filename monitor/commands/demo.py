"""``mlwatch demo``: the whole loop locally on embedded defaults."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click


@click.command()
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Time compression: one hour of production lasts 3600/SPEED seconds.",
)
@click.option("--minutes", type=click.FloatRange(min=0.1), default=None, help="Stop after this many minutes.")
@click.option(
    "--stable-hours",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Production hours of traffic like the training data before the drift starts.",
)
@click.option(
    "--ramp-hours",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Production hours over which the drift grows to its full size.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1),
    default=40.0,
    show_default=True,
    help="Predictions per second sent to the served model.",
)
@click.option("--no-browser", is_flag=True, help="Do not open the dashboard in a browser.")
@click.option("--api-port", type=int, default=8000, show_default=True)
@click.option("--dashboard-port", type=int, default=8501, show_default=True)
@click.option("--serve-port", type=int, default=5001, show_default=True)
@click.option("--receiver-port", type=int, default=8765, show_default=True)
@click.option(
    "--traffic-only",
    metavar="MODEL_URL",
    default=None,
    help="Only replay traffic to the model server at MODEL_URL, labels to $MLWATCH_URL (the compose demo profile).",
)
def demo(
    speed: float,
    minutes: float | None,
    stable_hours: float,
    ramp_hours: float,
    rate: float,
    no_browser: bool,
    api_port: int,
    dashboard_port: int,
    serve_port: int,
    receiver_port: int,
    traffic_only: str | None,
) -> None:
    """Train a model, serve it, replay drifting traffic and watch mlwatch catch and fix it.

    Everything lives under ./.mlwatch (SQLite store and MLflow); Ctrl-C stops every process.
    Runs against the local store, not MLWATCH_URL (--traffic-only sends labels to MLWATCH_URL).
    """
    from monitor.demo.config import DemoPorts
    from monitor.demo.runner import Demo, DemoOptions, replay_only

    if traffic_only:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            replay_only(traffic_only, speed, minutes, echo=click.echo)
        except KeyboardInterrupt:
            click.echo("traffic stopped")
        return

    ports = DemoPorts(api=api_port, dashboard=dashboard_port, serve=serve_port, receiver=receiver_port)
    options = DemoOptions(
        Path.cwd(),
        speed=speed,
        minutes=minutes,
        ports=ports,
        open_browser=not no_browser,
        rows_per_second=rate,
        stable_hours=stable_hours,
        ramp_hours=ramp_hours,
    )
    runner = Demo(options, echo=click.echo)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        runner.run()
    except KeyboardInterrupt:
        click.echo("\nstopping: every process the demo started is being shut down")
    click.echo("mlwatch demo stopped")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM stops the demo the same way Ctrl-C does."""
    raise KeyboardInterrupt
