"""Where a tracker's batches go, named by one URL: ``sink=`` or ``MLWATCH_SINK``.

    http://HOST:PORT, https://...   the ingest API (the default, ``MLWATCH_URL``)
    nats://HOST:4222, tls://...     NATS JetStream, read by ``mlwatch consume`` (``monitor.sdk.jetstream``)
    mqtt://HOST:1883[/PREFIX]       an MQTT broker, for edge devices (``monitor.sdk.mqtt``)

    >>> Tracker("credit", sink="nats://127.0.0.1:4222")     # or MLWATCH_SINK=nats://127.0.0.1:4222

The brokers' clients (nats-py, paho-mqtt) are imported when the first batch is sent; a
missing one fails when the tracker is built, with the install command.
"""

from __future__ import annotations

import importlib.util
import os

from monitor.sdk.transport import HttpTransport, Transport

INSTALL = "pip install 'mlwatch[stream]'"
"""What installs the brokers' clients (nats-py, paho-mqtt)."""
PREDICTIONS = "predictions"
"""The first token of a prediction subject (``monitor.stream.messages.KINDS``): ``predictions.<service>``."""
SCHEMES = ("http", "https", "nats", "tls", "mqtt", "mqtts")
"""The URL schemes a sink may have."""


def sink_transport(
    sink: str, service: str, *, token: str | None = None, token_file: str | os.PathLike[str] | None = None
) -> Transport:
    """The transport that delivers ``service``'s batches to ``sink``; ValueError for an unknown scheme."""
    scheme = sink.partition("://")[0].lower()
    if scheme in ("http", "https"):
        return HttpTransport(sink, token, service, token_file=token_file)
    if scheme in ("nats", "tls"):
        from monitor.sdk.jetstream import JetStreamTransport

        return JetStreamTransport(sink, service)
    if scheme in ("mqtt", "mqtts"):
        from monitor.sdk.mqtt import MqttTransport

        return MqttTransport(sink, service)
    raise ValueError(f"expected a sink URL of scheme {', '.join(SCHEMES)}, got {sink!r}")


def require(module: str, scheme: str) -> None:
    """ImportError naming the install command when ``module`` (a broker's client) is missing; imports nothing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"a {scheme}// sink needs the {module} client, which is not installed: {INSTALL}")
