"""An MQTT broker as a ``Source``: edge devices publish, ``mlwatch consume --stream mqtt://...`` stores.

Topics end in ``<kind>/<service>``: ``mlwatch/predictions/credit`` is read as the subject
``predictions.credit`` (``monitor.stream.messages``), whatever the levels before, so one
consumer may read the devices of many sites (``--subject 'sites/+/predictions/+'``). The
SDK publishes on ``mlwatch/predictions/<service>`` (``MLWATCH_SINK=mqtt://...``).

Delivery is at least once, end to end:

- the consumer subscribes with QoS 1 in a persistent session (``clean_session=False`` under a
  fixed client id, the ``--durable`` name), so what is published while it is down waits in
  the broker (Mosquitto keeps ``max_queued_messages``, 1000 by default, per session) and comes
  when it is back;
- acknowledgements are manual (paho-mqtt's ``manual_ack``): the PUBACK of a message goes out
  only after the store committed its records, or after its dead letter was published. A
  consumer killed in between gets the message again at its next connection (the broker
  resends unacknowledged QoS 1 messages), and request ids make it store nothing twice;
- the broker sends at most ``max_inflight_messages`` (Mosquitto: 20) unacknowledged messages
  at a time, which bounds a fetch; each message may hold a whole batch;
- a message the store could not take (it is down) is not acknowledged and is offered again
  after the retry delay, from memory: MQTT has no negative acknowledgement.

A message that can never be stored goes to ``mlwatch/dead/<original topic>`` as JSON
``{"topic", "error", "payload"}`` (``payload_base64`` for a body that is not UTF-8), QoS 1;
subscribe a persistent session to ``mlwatch/dead/#`` to keep them. Only one consumer may use
one client id (the broker disconnects the older); several read one topic with MQTT shared
subscriptions (``$share/<group>/<filter>``).

The client is paho-mqtt (in ``mlwatch[stream]``) with its network thread, used directly
because the guarantee above needs manual acknowledgements, which asyncio wrappers such as
aiomqtt do not expose.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from monitor.errors import ConfigError, Unavailable
from monitor.stream.consumer import Ack, DeadLetter, Outcome, Retry
from monitor.stream.messages import Message

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

log = logging.getLogger("mlwatch.consume")

INSTALL = "pip install 'mlwatch[stream]'"
"""What installs the MQTT client (paho-mqtt)."""
DEFAULT_TOPICS = ("mlwatch/predictions/+", "mlwatch/labels/+")
"""What the consumer reads unless ``--subject`` says otherwise: what the SDK publishes."""
DEAD_PREFIX = "mlwatch/dead/"
"""Dead letters go to this prefix followed by the topic the message came on."""


@dataclass(frozen=True)
class MqttOptions:
    """The broker (``mqtt://[user:password@]HOST:PORT``), the topic filters, and the session's client id."""

    url: str
    topics: tuple[str, ...] = DEFAULT_TOPICS
    client_id: str = "mlwatch"
    fetch_wait: float = 1.0  # seconds a fetch waits for a first message; also how soon a stop is noticed
    connect_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class _Held:
    """A received message not yet acknowledged: what the consumer sees, and the broker's handle."""

    message: Message
    topic: str
    mid: int
    qos: int


class MqttSource:
    """Reads QoS 1 messages in a persistent session and acknowledges each after it is settled."""

    def __init__(self, options: MqttOptions) -> None:
        self.options = options
        self._client: mqtt.Client | None = None
        self._queue: asyncio.Queue[_Held] = asyncio.Queue()
        self._pending: list[_Held] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[Any] | None = None
        self._subscribed: asyncio.Future[Any] | None = None
        self._lost = threading.Event()

    async def open(self) -> None:
        """Connect with a persistent session and subscribe; Unavailable naming the URL when no broker answers."""
        self._loop = asyncio.get_running_loop()
        self._connected, self._subscribed = self._loop.create_future(), self._loop.create_future()
        client = self._client = _new_client(self.options, self)
        host, port = _address(self.options.url)
        try:
            await asyncio.to_thread(client.connect, host, port, 30)
        except OSError as exc:
            raise Unavailable(
                f"cannot reach the MQTT broker at {self.options.url}: {exc}; start one (mosquitto) or point "
                "--stream at one"
            ) from exc
        client.loop_start()
        reason = await self._answer(self._connected, "did not answer the connection")
        if reason.is_failure:
            raise Unavailable(f"the MQTT broker at {self.options.url} refused the connection: {reason}")
        # what is published before the broker confirms the subscription would not be kept for us
        codes = await self._answer(self._subscribed, "did not confirm the subscription")
        refused = [topic for topic, code in zip(self.options.topics, codes, strict=False) if code.is_failure]
        if refused:
            raise ConfigError(f"the MQTT broker at {self.options.url} refused the subscription to {', '.join(refused)}")

    async def _answer(self, future: asyncio.Future[Any], failing: str) -> Any:
        try:
            return await asyncio.wait_for(future, self.options.connect_timeout)
        except TimeoutError as exc:
            raise Unavailable(f"the MQTT broker at {self.options.url} {failing}") from exc

    async def fetch(self, batch: int) -> list[Message]:
        """Up to ``batch`` messages; [] when none came within ``fetch_wait`` seconds."""
        try:
            first = await asyncio.wait_for(self._queue.get(), self.options.fetch_wait)
        except TimeoutError:
            return []
        self._pending = [first]
        while len(self._pending) < batch and not self._queue.empty():
            self._pending.append(self._queue.get_nowait())
        return [held.message for held in self._pending]

    async def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Acknowledge, dead-letter (then acknowledge) or offer again each message of the last fetch."""
        assert self._client is not None and len(outcomes) == len(self._pending)
        for held, outcome in zip(self._pending, outcomes, strict=True):
            if isinstance(outcome, Ack):
                self._client.ack(held.mid, held.qos)
            elif isinstance(outcome, DeadLetter):
                await self._dead_letter(held, outcome.error)
            else:
                self._retry(held, outcome)
        self._pending = []

    async def close(self) -> None:
        """Disconnect; what is not acknowledged comes again at the next connection of this client id."""
        client, self._client = self._client, None  # first: a disconnect asked for is not a loss
        if client is not None:
            client.disconnect()
            client.loop_stop()

    async def _dead_letter(self, held: _Held, error: str) -> None:
        assert self._client is not None
        info = self._client.publish(DEAD_PREFIX + held.topic, dead_letter(held.topic, held.message.data, error), qos=1)
        try:
            await asyncio.to_thread(info.wait_for_publish, self.options.connect_timeout)
        except (RuntimeError, ValueError) as exc:
            log.warning("could not publish a dead letter for %s (%s); it will be offered again", held.topic, exc)
        if not info.is_published():
            self._retry(held, Retry("its dead letter was not acknowledged"))
            return
        log.warning("dead-lettered a message of %s: %s", held.topic, error[:500])
        self._client.ack(held.mid, held.qos)

    def _retry(self, held: _Held, outcome: Retry) -> None:
        log.warning("%s: offering a message of %s again in %.0f s", outcome.reason, held.topic, outcome.delay)
        again = replace(held, message=replace(held.message, deliveries=held.message.deliveries + 1))
        assert self._loop is not None
        self._loop.call_later(outcome.delay, self._queue.put_nowait, again)

    # paho's callbacks, in its network thread

    def on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        """Subscribe again at every connection (a broker restarted without persistence forgot the session)."""
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self.options.topics])
            if self._lost.is_set():
                self._lost.clear()
                log.warning("MQTT: connected again to %s", self.options.url)
        assert self._loop is not None and self._connected is not None
        self._loop.call_soon_threadsafe(_resolve, self._connected, reason)

    def on_subscribe(self, client: Any, userdata: Any, mid: int, codes: list[Any], properties: Any) -> None:
        """The broker confirmed a subscription (``open`` waits for the first)."""
        assert self._loop is not None and self._subscribed is not None
        self._loop.call_soon_threadsafe(_resolve, self._subscribed, codes)

    def on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        """Say once that the connection is lost; paho reconnects with backoff."""
        if self._client is not None and not self._lost.is_set():
            self._lost.set()
            log.warning("MQTT: lost the connection to %s (%s); reconnecting", self.options.url, reason)

    def on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Hand a message to the event loop; it is acknowledged when settled."""
        held = _Held(
            Message(subject_of(message.topic), message.payload, 2 if message.dup else 1),
            message.topic,
            message.mid,
            message.qos,
        )
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, held)


def subject_of(topic: str) -> str:
    """The subject a topic stands for: its last two levels, ``mlwatch/predictions/credit`` → ``predictions.credit``."""
    levels = topic.split("/")
    return ".".join(levels[-2:]) if len(levels) >= 2 else topic


def dead_letter(topic: str, data: bytes, error: str) -> bytes:
    """The body of a dead letter: the topic, the error, and the original body (base64 when not UTF-8)."""
    body: dict[str, str] = {"topic": topic, "error": error}
    try:
        body["payload"] = data.decode()
    except UnicodeDecodeError:
        body["payload_base64"] = base64.b64encode(data).decode()
    return json.dumps(body).encode()


def _resolve(future: asyncio.Future[Any], reason: Any) -> None:
    if not future.done():
        future.set_result(reason)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"expected an mqtt://HOST:PORT URL, got {url!r}")
    return parts.hostname, parts.port or 1883


def _new_client(options: MqttOptions, source: MqttSource) -> mqtt.Client:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise ConfigError(f"mlwatch consume --stream mqtt:// needs the MQTT client: {INSTALL}") from exc
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=options.client_id, clean_session=False, manual_ack=True
    )
    client.on_connect, client.on_subscribe = source.on_connect, source.on_subscribe
    client.on_disconnect, client.on_message = source.on_disconnect, source.on_message
    client.reconnect_delay_set(1, 30)
    parts = urlsplit(options.url)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password) if parts.password else None)
    return client
