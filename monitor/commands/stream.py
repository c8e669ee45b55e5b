"""``mlwatch consume``: predictions and labels from NATS JetStream or MQTT topics, into the configured store."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from monitor.commands import open_configured_store, settings_from

if TYPE_CHECKING:
    from monitor.stream.consumer import Consumer
    from monitor.stream.heartbeat import Heartbeat
    from monitor.stream.jetstream import JetStreamSource
    from monitor.stream.mqtt import MqttSource

log = logging.getLogger("mlwatch.consume")


@click.command()
@click.option(
    "--stream",
    "url",
    required=True,
    help="The broker: nats://HOST:PORT of a NATS server with JetStream, or mqtt://HOST:PORT of an MQTT broker.",
)
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    help="What to read, e.g. 'predictions.>' (repeatable; several need NATS 2.10). Default: every subject "
    "of the stream. For MQTT, topic filters ending in <kind>/<service>, e.g. 'mlwatch/predictions/+' "
    "(default: mlwatch/predictions/+ and mlwatch/labels/+).",
)
@click.option(
    "--durable",
    default="mlwatch",
    show_default=True,
    help="The durable consumer: every `mlwatch consume` with the same name shares its messages. For MQTT, "
    "the client id of the persistent session (one consumer per name).",
)
@click.option("--batch", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Messages per fetch.")
@click.option("--stream-name", default="MLWATCH", show_default=True, help="The JetStream stream (created if missing).")
@click.option(
    "--stream-subject",
    "stream_subjects",
    multiple=True,
    help="Subjects of the stream when it is created (repeatable; default 'predictions.>' and 'labels.>').",
)
@click.option(
    "--ack-wait",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds before a message fetched and never settled (a consumer that died) is delivered again; "
    "used when the durable consumer is created.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(0.1, 300),
    default=5.0,
    show_default=True,
    help="Seconds between two writes of this consumer's counters, backlog and lag to the store, where "
    "/metrics and the dashboard read them.",
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
    ack_wait: float,
    heartbeat: float,
    log_level: str,
    as_json: bool,
) -> None:
    """Ingest prediction and label messages from NATS JetStream until SIGINT or SIGTERM.

    Runs against the local store (store_url), not MLWATCH_URL.

    \b
    A message on predictions.<service> holds a prediction batch ({"records": [...]}) or one
    record, as POST /v1/services/<service>/predictions takes them; one on labels.<service>
    holds {"labels": [...]} or one label. Each is acknowledged after the store committed it
    (at least once; request ids make a redelivery store nothing twice). A message that can
    never be stored goes to mlwatch.dead.<subject> with the reason in its Mlwatch-Error
    header; while the store is down, messages are redelivered instead.

    \b
    Over MQTT (edge devices), topics end in <kind>/<service> (mlwatch/predictions/credit);
    QoS 1 in a persistent session, acknowledged after commit; dead letters go to
    mlwatch/dead/<topic> as JSON with the error.

    \b
    Run several with the same --durable to share the work. Each writes its counters, the
    durable's backlog and its publish-to-commit lag to the store every --heartbeat seconds;
    the server's /metrics (mlwatch_stream_*) and the dashboard's overview show every consumer.

    \b
        mlwatch consume --stream nats://127.0.0.1:4222 --subject 'predictions.>'
        mlwatch consume --stream mqtt://127.0.0.1:1883 --subject 'mlwatch/predictions/+'
    """
    from monitor.errors import MlwatchError
    from monitor.ingest import Ingestor
    from monitor.stream.consumer import Consumer
    from monitor.stream.heartbeat import Heartbeat

    if not url.startswith(("nats://", "mqtt://")):
        raise click.BadParameter(
            f"expected a nats://HOST:PORT or mqtt://HOST:PORT URL, got {url!r}", param_hint="--stream"
        )
    settings = settings_from(ctx)
    store, _ = open_configured_store(ctx)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    source, reading = _source(url, subjects, durable, stream_name, stream_subjects, ack_wait)
    consumer = Consumer(store.get_service, Ingestor(store), max_records=settings.max_batch_records)
    # MQTT has no stream: its consumers are listed under the broker they read
    where = stream_name if url.startswith("nats://") else urlsplit(url).netloc.rpartition("@")[2]
    beats = Heartbeat(store.record_consumer, where, durable, interval=heartbeat, forget=store.forget_consumers)
    try:
        asyncio.run(_consume(source, consumer, batch, reading, beats))
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


def _source(
    url: str,
    subjects: tuple[str, ...],
    durable: str,
    stream_name: str,
    stream_subjects: tuple[str, ...],
    ack_wait: float,
) -> tuple[JetStreamSource | MqttSource, str]:
    """The broker's ``Source`` for ``url``, and what it reads, for the log."""
    if url.startswith("mqtt://"):
        from monitor.stream.mqtt import DEFAULT_TOPICS, MqttOptions, MqttSource

        topics = subjects or DEFAULT_TOPICS
        return MqttSource(MqttOptions(url, topics, durable)), f"{', '.join(topics)} of {url} as {durable}"
    from monitor.stream.jetstream import JetStreamOptions, JetStreamSource

    options = JetStreamOptions(
        url, stream_name, stream_subjects or JetStreamOptions.stream_subjects, durable, subjects, ack_wait
    )
    reading = ", ".join(subjects) or "every subject"
    return JetStreamSource(options), f"{reading} of stream {stream_name} as {durable}"


async def _consume(
    source: JetStreamSource | MqttSource, consumer: Consumer, batch: int, reading: str, heartbeat: Heartbeat
) -> None:
    from monitor.stream.consumer import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await source.open()
        log.info("consuming %s (%s)", reading, heartbeat.name)
        await asyncio.to_thread(heartbeat.forget)
        await run(source, consumer, stop, batch=batch, heartbeat=heartbeat)
    finally:
        await source.close()
