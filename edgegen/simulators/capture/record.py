"""The recorder: a paho-mqtt subscriber (QoS 1) that writes every message it receives to a capture file.

Under MQTT 5 it subscribes with retain-as-published, so live messages keep the retain flag their publisher set
(3.1.1 brokers clear it; only messages the broker held before the subscription then arrive retained).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edgegen.simulators.capture import link
from edgegen.simulators.capture.format import CaptureHeader, CaptureRecord, CaptureWriter
from edgegen.simulators.errors import LinkError

DEFAULT_FILTER = "edgegen/v1/#"


@dataclass(frozen=True, slots=True)
class RecordSummary:
    messages: int
    bytes: int  # payload bytes
    file_bytes: int
    seconds: float  # from subscribing to stopping
    topics: dict[str, int]  # messages per topic


class Recorder:
    """``start()`` connects and subscribes; messages are written as they arrive until ``close()``."""

    def __init__(
        self,
        broker_url: str,
        out: Path,
        filters: Sequence[str] = (DEFAULT_FILTER,),
        *,
        protocol: str = "5",
        timeout_s: float = 10.0,
        overwrite: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not filters:
            raise ValueError("at least one topic filter")
        self.broker_url = broker_url
        self._where = link.public_url(broker_url)  # no password in the file or in messages
        self.out = out
        self.filters = tuple(filters)
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.overwrite = overwrite
        self._credentials = (username, password)
        self.topics: Counter[str] = Counter()
        self.messages = 0
        self.payload_bytes = 0
        self.error: BaseException | None = None
        self.arrived = threading.Condition()  # notified per message, and on a write error
        self._writer: CaptureWriter | None = None
        self._client: mqtt.Client | None = None
        self._subscribed = threading.Event()
        self._refused: list[str] = []
        self._t0_ns: int | None = None
        self._started = 0.0
        self._seconds: float | None = None
        self._file_bytes = 0

    def start(self) -> None:
        header = CaptureHeader(
            broker=self._where,
            filters=self.filters,
            started_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            protocol=self.protocol,
            retain_as_published=self.protocol == "5",
        )
        self._writer = CaptureWriter(self.out, header, overwrite=self.overwrite)  # before connecting: no clobber
        self._started = time.monotonic()
        try:
            self._client = link.connect(
                self.broker_url,
                "record",
                protocol=self.protocol,
                timeout_s=self.timeout_s,
                on_connected=self._subscribe,
                setup=self._setup,
                username=self._credentials[0],
                password=self._credentials[1],
            )
            if not self._subscribed.wait(self.timeout_s):
                raise LinkError(f"no SUBACK from {self._where} within {self.timeout_s} s")
            if self._refused:
                raise LinkError(f"subscription refused by {self._where}: {', '.join(self._refused)}")
        except BaseException:
            self.close()
            raise

    def _setup(self, client: mqtt.Client) -> None:
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    def _subscribe(self, client: mqtt.Client) -> None:
        if self.protocol == "5":
            client.subscribe([(f, SubscribeOptions(qos=1, retainAsPublished=True)) for f in self.filters])
        else:
            client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: list[ReasonCode], props: Properties | None
    ) -> None:
        self._refused.extend(str(c) for c in codes if c.is_failure)
        link.ack_now(client)  # else the first message can wait for our delayed ACK of this SUBACK
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic_ns()  # first thing: the arrival time is what replay reproduces
        if self._t0_ns is None:
            self._t0_ns = now
        if msg.qos == 0:  # no PUBACK carries our TCP ACK: the broker's Nagle would hold the next message for it
            link.ack_now(client)
        payload = bytes(msg.payload)
        record = CaptureRecord((now - self._t0_ns) // 1000, msg.topic, msg.qos, bool(msg.retain), payload)
        with self.arrived:
            if self._writer is None or self.error is not None:
                return
            try:
                self._writer.write(record)
            except (OSError, ValueError) as exc:  # disk full, a topic over 64 KiB: stop, reported by wait()
                self.error = exc
            else:
                self.messages += 1
                self.payload_bytes += len(payload)
                self.topics[msg.topic] += 1
            self.arrived.notify_all()

    def wait(
        self, *, messages: int | None = None, duration_s: float | None = None, stop: threading.Event | None = None
    ) -> None:
        """Block until ``messages`` are recorded, ``duration_s`` has passed since start, or ``stop`` is set.

        With none of them, until interrupted (KeyboardInterrupt reaches the caller, who then calls close()).
        """
        deadline = None if duration_s is None else self._started + duration_s
        with self.arrived:
            while self.error is None and not (stop is not None and stop.is_set()):
                if messages is not None and self.messages >= messages:
                    return
                timeout = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if timeout <= 0:
                    return
                self.arrived.wait(timeout)  # short slices: stop and Ctrl-C are seen promptly
            if self.error is not None:
                raise self.error

    def close(self) -> RecordSummary:
        """Disconnect, then sync and close the file; safe to call twice."""
        if self._client is not None:
            link.close(self._client)
            self._client = None
        with self.arrived:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            self._file_bytes = writer.bytes_written
        if self._seconds is None:
            self._seconds = time.monotonic() - self._started
        return RecordSummary(self.messages, self.payload_bytes, self._file_bytes, self._seconds, dict(self.topics))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
