"""``mlwatch consume``: predictions and labels from a NATS JetStream stream, into the configured store."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import TYPE_CHECKING

import click

from monitor.commands import open_configured_store, settings_from

if TYPE_CHECKING:
    from monitor.stream.consumer import Consumer
    from monitor.stream.jetstream import JetStreamSource

log = logging.getLogger("mlwatch.consume")


@click.command()
@click.option("--stream", "url", required=True, help="The broker: nats://HOST:PORT of a NATS server with JetStream.")
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    help="What to read, e.g. 'predictions.>' (repeatable; several need NATS 2.10). Default: every subject "
    "of the stream.",
)
@click.option(
    "--durable",
    default="mlwatch",
    show_default=True,
    help="The durable consumer: every `mlwatch consume` with the same name shares its messages.",
)
@click.option("--batch", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Messages per fetch.")
@click.option("--stream-name", default="MLWATCH", show_default=True, help="The JetStream stream (created if missing).")
@click.option(
    "--stream-subject",
    "stream_subjects",
    multiple=True,
    help="Subjects of the stream when it is created (repeatable; default 'predictions.>' and 'labels.>').",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the counters at exit as one JSON object: consumed, stored, duplicates, dead_lettered, "
    "retried, redelivered, batches.",
)
@click.pass_context
def consume(
    ctx: click.Context,
    url: str,
    subjects: tuple[str, ...],
    durable: str,
    batch: int,
    stream_name: str,
    stream_subjects: tuple[str, ...],
    log_level: str,
    as_json: bool,
) -> None:
    """Ingest prediction and label messages from NATS JetStream until SIGINT or SIGTERM.

    \b
    A message on predictions.<service> holds a prediction batch ({"records": [...]}) or one
    record, as POST /v1/services/<service>/predictions takes them; one on labels.<service>
    holds {"labels": [...]} or one label. Each is acknowledged after the store committed it
    (at least once; request ids make a redelivery store nothing twice). A message that can
    never be stored goes to mlwatch.dead.<subject> with the reason in its Mlwatch-Error
    header; while the store is down, messages are redelivered instead.

    \b
        mlwatch consume --stream nats://127.0.0.1:4222 --subject 'predictions.>'
    """
    from monitor.errors import MlwatchError
    from monitor.ingest import Ingestor
    from monitor.stream.consumer import Consumer
    from monitor.stream.jetstream import JetStreamOptions, JetStreamSource

    if not url.startswith("nats://"):
        raise click.BadParameter(f"expected a nats://HOST:PORT URL, got {url!r}", param_hint="--stream")
    settings = settings_from(ctx)
    store, _ = open_configured_store(ctx)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = JetStreamOptions(url, stream_name, stream_subjects or JetStreamOptions.stream_subjects, durable, subjects)
    consumer = Consumer(store.get_service, Ingestor(store), max_records=settings.max_batch_records)
    try:
        asyncio.run(_consume(JetStreamSource(options), consumer, batch))
    except MlwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    stats = consumer.stats
    click.echo(
        f"{ctx.command_path}: stopped after {stats.consumed} message(s): {stats.stored} record(s) stored, "
        f"{stats.duplicates} duplicate(s), {stats.dead_lettered} dead-lettered, {stats.retried} retried, "
        f"{stats.redelivered} redelivered",
        err=True,
    )
    if as_json:
        click.echo(json.dumps(stats.as_dict()))


async def _consume(source: JetStreamSource, consumer: Consumer, batch: int) -> None:
    from monitor.stream.consumer import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await source.open()
        options = source.options
        reading = ", ".join(options.subjects) or "every subject"
        log.info("consuming %s of stream %s as %s", reading, options.stream, options.durable)
        await run(source, consumer, stop, batch=batch)
    finally:
        await source.close()
