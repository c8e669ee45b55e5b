"""Batches published over MQTT, for edge devices (``MLWATCH_SINK=mqtt://broker:1883``).

A device publishes each batch with QoS 1 on ``<prefix>/predictions/<service>`` (prefix
``mlwatch`` unless the URL has a path: ``mqtt://broker:1883/site-7`` publishes on
``site-7/predictions/<service>``), and the send returns when the broker acknowledged it
(PUBACK). ``mlwatch consume --stream mqtt://...`` reads those topics. Offline, the batches
go to the tracker's spool (``monitor.sdk.spool``) and are published in a burst, oldest
first, when the broker is back; every record keeps the time it was logged (``timestamp``),
so checks see when a prediction was made, not when it arrived.

    no broker, no PUBACK within the timeout     Retryable: spooled, retried with backoff
    a body the client cannot send (too large)   Rejected(413): split

paho-mqtt (a dependency of aiomqtt, in ``mlwatch[stream]``) is synchronous with a network
thread of its own (``loop_start``), which answers keep-alives and reconnects; it is
imported on the first send. A batch sent again after a lost PUBACK may arrive twice: the
consumer stores it once (request ids).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from monitor.sdk.sink import PREDICTIONS, require
from monitor.sdk.transport import Json, Rejected, Retryable

if TYPE_CHECKING:
    import paho.mqtt.client

log = logging.getLogger("monitor.sdk")
DEFAULT_PREFIX = "mlwatch"
"""The first topic level of what the SDK publishes, unless the sink URL has a path."""


class MqttTransport:
    """Publishes batches with QoS 1 on ``<prefix>/predictions/<service>`` and waits for each PUBACK."""

    def __init__(self, url: str, service: str, *, timeout: float = 5.0, client_id: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected an mqtt://HOST:PORT URL, got {url!r}")
        require("paho", "mqtt:")
        self._host, self._port, self._tls = (
            parts.hostname,
            parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            parts.scheme == "mqtts",
        )
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        prefix = parts.path.strip("/") or DEFAULT_PREFIX
        self.topic = f"{prefix}/{PREDICTIONS}/{service}"
        self.target = f"{parts.scheme}://{self._host}:{self._port}/{self.topic}"
        self.timeout = timeout
        self._client_id = client_id or f"mlwatch-sdk-{uuid.uuid4().hex[:12]}"
        self._client: paho.mqtt.client.Client | None = None
        self._refused = threading.Event()

    def send(self, records: Sequence[Json]) -> None:
        """Publish one batch (QoS 1) and wait for the broker's PUBACK."""
        body = json.dumps({"records": list(records)}, allow_nan=False, default=str).encode()
        client = self._connected()
        try:
            info = client.publish(self.topic, body, qos=1)
        except ValueError as exc:  # paho's bound on a payload (256 MB) or a bad topic
            raise Rejected(413, f"MQTT: {exc}") from exc
        try:
            info.wait_for_publish(self.timeout)
        except RuntimeError as exc:  # the client had no connection and queued it
            raise Retryable(f"MQTT broker {self._host}:{self._port}: {exc}") from exc
        if not info.is_published():
            raise Retryable(f"MQTT broker {self._host}:{self._port} did not acknowledge within {self.timeout:g} s")

    def _connected(self) -> paho.mqtt.client.Client:
        if self._client is not None:
            if not self._client.is_connected():
                raise Retryable(f"MQTT broker {self._host}:{self._port} is not connected (reconnecting)")
            return self._client
        client = self._new_client()
        try:
            client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise Retryable(f"cannot reach the MQTT broker at {self._host}:{self._port}: {exc}") from exc
        client.loop_start()
        self._client = client
        return client

    def _new_client(self) -> paho.mqtt.client.Client:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self._client_id)
        client.on_connect = self._on_connect
        client.reconnect_delay_set(1, 30)
        if self._user:
            client.username_pw_set(self._user, self._password)
        if self._tls:
            client.tls_set()
        return client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure and not self._refused.is_set():
            self._refused.set()
            log.warning("mlwatch: the MQTT broker %s:%s refused the connection: %s", self._host, self._port, reason)
        elif not reason.is_failure:
            self._refused.clear()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def after_fork(self) -> None:
        """In a forked child: a connection of its own (the parent's network thread is not here)."""
        self._client = None
