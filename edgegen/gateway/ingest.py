"""MQTT ingest with acknowledgement after the durable write.

aiomqtt acknowledges a QoS 1 message as soon as it arrives; the gateway must acknowledge only once the message is
in its spool. paho-mqtt 2.x can (``manual_ack_set``), so the gateway runs a paho client on its network thread and
hands each message to the event loop; :meth:`MqttIngest.ack` sends the PUBACKs after the spool commit.

Until acknowledged, a message stays the broker's responsibility: if the gateway dies, the broker redelivers it (to
this client id's persistent session, or to another member of a shared subscription group). The broker also bounds
how many unacknowledged messages it sends (mosquitto: ``max_inflight_messages``), which is the back-pressure.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edgegen.gateway.config import MqttSettings
from edgegen.gateway.errors import GatewayError
from edgegen.gateway.protocol import data_filter
from edgegen.gateway.protocol.topics import status_filter

log = logging.getLogger(__name__)


class IngestError(GatewayError):
    """The broker refused the connection for a reason retrying cannot fix (bad credentials, not authorised)."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    received_ns: int  # time.time_ns() at arrival
    connection: int  # which connection delivered it (an ack is only meaningful on that one)
    retain: bool = False  # a retained message replayed by the broker on subscribe


def shared(filter_: str, group: str | None) -> str:
    """``$share/{group}/{filter}``: the broker gives each message to one member of the group."""
    return filter_ if group is None else f"$share/{group}/{filter_}"


class MqttIngest:
    """A paho client that subscribes to data (optionally as a shared-subscription member) and status topics."""

    def __init__(self, settings: MqttSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self._loop = loop
        self._buffer: collections.deque[Message] = collections.deque()
        self._arrived = asyncio.Event()
        self.connected = asyncio.Event()
        self.fatal: IngestError | None = None
        self._connection = 0
        self._client = self._build()

    @property
    def v5(self) -> bool:
        return self.settings.protocol == "5"

    def _build(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else False,
        )
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if s.username:
            client.username_pw_set(s.username, s.password_value())
        context = s.ssl_context()
        if context is not None:
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        s = self.settings
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = s.session_expiry_s  # queue for us while we are away
        kwargs: dict[str, Any] = {"keepalive": s.keepalive_s}
        if self.v5:
            kwargs["clean_start"] = False
            kwargs["properties"] = properties
        self._client.connect_timeout = s.timeout_s
        self._client.connect_async(s.host, s.port, **kwargs)
        self._client.loop_start()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect cleanly (unacknowledged messages stay with the broker's session) and stop the thread."""
        self._client.disconnect()
        await asyncio.wait_for(asyncio.to_thread(self._client.loop_stop), timeout_s)
        self.connected.clear()

    # -- paho thread -------------------------------------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT %s refused the connection: %s", self.settings.url, reason)
            if str(reason) in ("Bad user name or password", "Not authorized"):
                self.fatal = IngestError(f"MQTT {self.settings.url}: {reason}")
                self._loop.call_soon_threadsafe(self._arrived.set)
            return
        self._connection += 1  # written by the paho thread only
        site = self.settings.site
        filters = [shared(data_filter(site), self.settings.shared_group), status_filter(site)]
        if self.v5:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        else:
            client.subscribe([(f, 1) for f in filters])
        log.info(
            "connected to %s (session present: %s); subscribed to %s",
            self.settings.url,
            flags.session_present,
            ", ".join(filters),
        )
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        level = logging.INFO if reason.value == 0 else logging.WARNING  # 0: our own clean disconnect
        log.log(level, "MQTT %s disconnected: %s", self.settings.url, reason)
        self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        message = Message(
            msg.topic, bytes(msg.payload), msg.qos, msg.mid, time.time_ns(), self._connection, bool(msg.retain)
        )
        self._buffer.append(message)
        if len(self._buffer) == 1 or len(self._buffer) % 64 == 0:
            self._loop.call_soon_threadsafe(self._arrived.set)

    # -- event loop --------------------------------------------------------------------------------------

    async def batch(self, max_messages: int, wait_s: float) -> list[Message]:
        """Up to ``max_messages`` received messages, waiting at most ``wait_s`` for the first."""
        if not self._buffer:
            self._arrived.clear()
            if not self._buffer:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), wait_s)
        if self.fatal is not None:
            raise self.fatal
        out: list[Message] = []
        while self._buffer and len(out) < max_messages:
            out.append(self._buffer.popleft())
        return out

    def ack(self, messages: list[Message]) -> int:
        """Acknowledge QoS 1 messages received on the current connection; return how many were sent.

        A message from an earlier connection is not acknowledged: the broker redelivers it on the new one (with
        the same content), and the spool recognises it as a duplicate.
        """
        current = self._connection
        sent = 0
        for m in messages:
            if m.qos > 0 and m.connection == current:
                self._client.ack(m.mid, m.qos)
                sent += 1
        return sent

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Fire-and-forget publish from the event loop (alerts, the gateway's status)."""
        self._client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def buffered(self) -> int:
        return len(self._buffer)
