"""The MQTT link of a virtual node: firmware_py's ``publish(topic, payload, qos)`` over paho-mqtt.

On connect the node's retained status says ``online``; its last will, also retained, says ``offline``, so a node
that vanishes is marked offline by the broker. Every QoS 1 publish is tracked until the broker acknowledges it;
``flush`` waits for all of them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgegen import firmware_py
from edgegen.gateway.protocol import status_topic
from edgegen.simulators.errors import LinkError


class PahoLink:
    def __init__(
        self,
        url: str,
        site: str,
        node_id: str,
        timeout_s: float = 10.0,
        keepalive_s: int = 30,
        max_inflight: int = 100,
        journal: list[bytes] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.status_topic = str(status_topic(site, node_id))
        self.journal = journal  # when given, every published payload is appended (tests, record)
        self.published = 0
        self._pending: deque[mqtt.MQTTMessageInfo] = deque()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edgegen-node-{site}-{node_id}", clean_session=True
        )
        self._client.connect_timeout = timeout_s
        self._client.max_inflight_messages_set(max_inflight)
        self._client.will_set(self.status_topic, _status("offline"), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        if parts.scheme == "mqtts":
            self._client.tls_set()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if not getattr(reason, "is_failure", False):
            self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, *args: object) -> None:
        self._connected.clear()

    def connect(self) -> None:
        try:
            self._client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except OSError as exc:
            raise LinkError(f"cannot reach the broker at {self.host}:{self.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(self.timeout_s):
            self._client.loop_stop()
            raise LinkError(f"no CONNACK from {self.host}:{self.port} within {self.timeout_s} s")
        self._track(self._client.publish(self.status_topic, _status("online"), qos=1, retain=True))

    def publish(self, topic: bytes | str, payload: bytes | bytearray | memoryview, qos: int) -> None:
        data = bytes(payload)  # the firmware reuses its frame buffer; paho keeps this copy until PUBACK
        name = topic.decode() if isinstance(topic, bytes) else topic
        self._track(self._client.publish(name, data, qos=qos))
        self.published += 1
        if self.journal is not None:
            self.journal.append(data)

    def _track(self, info: mqtt.MQTTMessageInfo) -> None:
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued until reconnect
            raise LinkError(f"publish refused: {mqtt.error_string(info.rc)}")
        self._pending.append(info)
        while self._pending and self._pending[0].is_published():
            self._pending.popleft()

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until the broker has acknowledged every publish so far."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkError(f"{len(self._pending)} publishes unacknowledged after the timeout")
            if self._pending[0].is_published():
                self._pending.popleft()
            else:
                self._pending[0].wait_for_publish(remaining)

    def close(self) -> None:
        """Say ``offline`` (a clean disconnect does not fire the will), flush, disconnect."""
        try:
            if self._connected.is_set():
                self._track(self._client.publish(self.status_topic, _status("offline"), qos=1, retain=True))
                self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()


def _status(state: str) -> bytes:
    return json.dumps({"state": state, "fw": firmware_py.VERSION}).encode()
