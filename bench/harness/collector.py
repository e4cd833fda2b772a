"""A paho-mqtt subscriber that records every message it gets with its arrival time: what a node delivered (tests),
and when (bench/replay_timing.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    dup: bool
    retain: bool
    at: float = 0.0  # time.monotonic() on arrival


class Collector:
    """Subscribes with a persistent session (clean_session off), reconnecting quickly if the broker restarts."""

    def __init__(self, url: str, topic_filter: str, client_id: str = "collector") -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._filter = topic_filter
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(self._filter, qos=1)
        self._client.on_subscribe = lambda c, u, mid, rc, p: self._subscribed.set()
        self._client.on_message = self._on_message
        self._host, self._port = host, int(port)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Received(msg.topic, bytes(msg.payload), bool(msg.dup), bool(msg.retain), time.monotonic())
            )

    def __enter__(self) -> Self:
        self._client.connect(self._host, self._port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("collector did not subscribe")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, count: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.on(topic)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.on(topic))} of {count} messages on {topic} after {timeout_s} s")
            time.sleep(0.02)
        return self.on(topic)
