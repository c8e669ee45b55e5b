"""``mlwatch proxy`` and ``mlwatch agent``: the collectors that run as their own process."""

from __future__ import annotations

import contextlib
import os
import socket

import click


def api_endpoint(url: str | None, token: str | None) -> tuple[str, str | None]:
    """The API URL and token: the options given, else MLWATCH_URL / MLWATCH_TOKEN, else the local default."""
    from monitor.sdk.tracker import DEFAULT_URL

    return url or os.environ.get("MLWATCH_URL") or DEFAULT_URL, token or os.environ.get("MLWATCH_TOKEN")


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}", param_hint="--listen")
    return host or "127.0.0.1", int(port)


@click.command()
@click.option("--target", required=True, help="Base URL of the model server, e.g. http://127.0.0.1:5000.")
@click.option("--service", required=True, help="The mlwatch service the calls are logged under.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT the proxy listens on.")
@click.option(
    "--path", "paths", multiple=True, help="Log only requests under this path prefix (repeatable; default all)."
)
@click.option("--model-version", default=None, help="Model version recorded with each prediction.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the model server.")
@click.option("--url", default=None, help="mlwatch API URL (default: $MLWATCH_URL or http://127.0.0.1:8000).")
@click.option("--token", default=None, help="Ingest token (default: $MLWATCH_TOKEN).")
@click.option("--spool-dir", default=None, help="Where undelivered predictions wait (default: ~/.cache/mlwatch/spool).")
@click.option(
    "--sink",
    default=None,
    help="Publish to a broker instead of the API: nats://HOST:4222 (JetStream, read by `mlwatch consume`) or "
    "mqtt://HOST:1883 (default: $MLWATCH_SINK; else the API).",
)
@click.option(
    "--metrics-path",
    default="/mlwatch/metrics",
    show_default=True,
    help="Where the proxy answers its own delivery counters as Prometheus text ('' to forward that path too).",
)
def proxy(
    target: str,
    service: str,
    listen: str,
    paths: tuple[str, ...],
    model_version: str | None,
    timeout: float,
    url: str | None,
    token: str | None,
    spool_dir: str | None,
    sink: str | None,
    metrics_path: str,
) -> None:
    """Reverse-proxy a model server, timing every call and logging its features and predictions.

    Understands the MLflow scoring server, TF Serving / KServe V1 and Open Inference Protocol
    (KServe V2) payloads; other POST bodies are timed and logged without features.
    """
    import uvicorn

    from monitor.proxy import ProxyApp
    from monitor.sdk import Tracker

    host, port = _listen(listen)
    if not target.startswith(("http://", "https://")):
        raise click.BadParameter(f"expected an http(s) URL, got {target!r}", param_hint="--target")
    api_url, api_token = api_endpoint(url, token)
    sink = sink or (None if url else os.environ.get("MLWATCH_SINK")) or api_url
    try:
        tracker = Tracker(service, sink=sink, token=api_token, model_version=model_version, spool_dir=spool_dir)
    except (ValueError, ImportError) as exc:
        raise click.BadParameter(str(exc), param_hint="--sink") from exc
    app = ProxyApp(target, tracker, paths=paths or ("/",), timeout=timeout, metrics_path=metrics_path or None)
    click.echo(f"mlwatch proxy: http://{host}:{port} -> {target} (service {service!r}, logging to {sink})")
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,  # the upstream's own Server and Date headers pass through
        proxy_headers=False,  # X-Forwarded-* pass through to the model server as they came
    )


@click.command()
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds between samples."
)
@click.option("--pid", "pids", type=int, multiple=True, help="Watch this process (repeatable).")
@click.option("--process-name", "names", multiple=True, help="Watch processes with this name (repeatable).")
@click.option("--host-name", default=None, help="Name the samples are stored under (default: this host's name).")
@click.option(
    "--scrape",
    "scrapes",
    multiple=True,
    help="Scrape this Prometheus text endpoint, e.g. TorchServe's http://127.0.0.1:8082/metrics (repeatable).",
)
@click.option("--once", is_flag=True, help="Take one sample, send it, and exit.")
@click.option("--url", default=None, help="mlwatch API URL (default: $MLWATCH_URL or http://127.0.0.1:8000).")
@click.option("--token", default=None, help="Ingest token (default: $MLWATCH_TOKEN).")
def agent(
    interval: float,
    pids: tuple[int, ...],
    names: tuple[str, ...],
    host_name: str | None,
    scrapes: tuple[str, ...],
    once: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Sample the host, the given processes and every NVIDIA GPU, and send them to mlwatch."""
    from monitor.agent import Agent, SampleSender, default_collectors
    from monitor.agent.prometheus import PrometheusCollector

    api_url, api_token = api_endpoint(url, token)
    host = host_name or socket.gethostname()
    sender = SampleSender(api_url, api_token, host)
    scraped = [PrometheusCollector(endpoint) for endpoint in scrapes]
    runner = Agent([*default_collectors(pids=pids, names=names), *scraped], sender)
    click.echo(f"mlwatch agent: sampling {host!r} every {interval:g}s, sending to {api_url}")
    if once:
        runner.tick()
        if runner.pending:
            raise click.ClickException(f"{runner.pending} sample(s) could not be sent to {api_url}")
        return
    with contextlib.suppress(KeyboardInterrupt):
        runner.run(interval)
