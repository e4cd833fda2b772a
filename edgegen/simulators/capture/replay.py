"""The replayer: publishes a capture's messages at their recorded times (scaled by ``speed``) to a broker."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from edgegen.simulators.capture import link
from edgegen.simulators.capture.format import CaptureReader
from edgegen.simulators.errors import LinkError

ACK_STALL_S = 10.0  # give up when no acknowledgement has come for this long (not a total: big captures take time)
MAX_INFLIGHT = 1000  # paho holds back publishes beyond this many unacknowledged; too few would delay bursts


@dataclass(frozen=True, slots=True)
class CaptureReplaySummary:
    messages: int
    bytes: int  # payload bytes
    seconds: float
    max_lateness_ms: float  # worst publish time behind schedule; 0 at speed 0 (no schedule)
    torn_records: int  # a torn last record in the file, ignored
    stopped: bool  # ``stop`` was set before the end


def replay_capture(
    path: Path,
    broker_url: str,
    *,
    speed: float = 1.0,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    topic_prefix: str | None = None,
) -> CaptureReplaySummary:
    """Publish every record with its topic (after ``topic_prefix``), QoS, retain flag and payload.

    Record *i* goes out at ``t_i / speed`` after the first (speed 0: as fast as the broker takes them); then
    every QoS 1/2 publish is waited for. The whole file is checked first, so damage raises CaptureCorrupt
    before anything is published. ``progress`` gets the count published so far, after each message.
    """
    if not (speed >= 0 and math.isfinite(speed)):
        raise ValueError(f"speed {speed}: expected a finite number >= 0")
    prefix = topic_prefix or ""
    if any(c in prefix for c in "+#\0"):
        raise ValueError(f"topic prefix {prefix!r}: no wildcards or NUL")
    stop = stop or threading.Event()
    with path.open("rb") as stream:
        checked = CaptureReader(stream, str(path))
        for _ in checked:
            pass
    client = link.connect(broker_url, "replay", setup=lambda c: c.max_inflight_messages_set(MAX_INFLIGHT))
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    schedule = _Schedule(speed, stop)
    sent = sent_bytes = 0
    try:
        with path.open("rb") as stream:
            for record in CaptureReader(stream, str(path)):
                if not schedule.wait(record.t_us):
                    break
                info = client.publish(prefix + record.topic, record.payload, qos=record.qos, retain=record.retain)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: sent on reconnect
                    raise LinkError(f"publish to {prefix + record.topic} refused: {mqtt.error_string(info.rc)}")
                if record.qos > 0:
                    pending.append(info)
                while pending and pending[0].is_published():
                    pending.popleft()
                sent += 1
                sent_bytes += len(record.payload)
                if progress is not None:
                    progress(sent)
        _await_acks(pending, link.public_url(broker_url))
    finally:
        link.close(client)
    return CaptureReplaySummary(
        sent, sent_bytes, schedule.elapsed(), schedule.max_late_s * 1000, checked.torn_records, stop.is_set()
    )


class _Schedule:
    """Record times mapped onto this run's clock: the first record is due at once, the rest ``t / speed`` later."""

    def __init__(self, speed: float, stop: threading.Event) -> None:
        self.speed = speed
        self.stop = stop
        self.started = time.monotonic()
        self.origin_us: int | None = None
        self.max_late_s = 0.0

    def wait(self, t_us: int) -> bool:
        """Sleep until ``t_us`` is due; False when ``stop`` was set first."""
        if self.origin_us is None:
            self.origin_us, self.started = t_us, time.monotonic()
        if self.speed == 0:
            return not self.stop.is_set()
        due = self.started + (t_us - self.origin_us) / 1e6 / self.speed
        if self.stop.wait(max(0.0, due - time.monotonic())):
            return False
        self.max_late_s = max(self.max_late_s, time.monotonic() - due)
        return True

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _await_acks(pending: deque[mqtt.MQTTMessageInfo], broker_url: str) -> None:
    """Until every publish is acknowledged; LinkError after ACK_STALL_S without progress."""
    last_progress = time.monotonic()
    while pending:
        if pending[0].is_published():
            pending.popleft()
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > ACK_STALL_S:
            raise LinkError(f"{len(pending)} publishes to {broker_url} unacknowledged after {ACK_STALL_S} s")
        else:
            time.sleep(0.005)
