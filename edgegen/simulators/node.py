"""Virtual nodes: the firmware's node application (``firmware_py.app.NodeApp``) on CPython, as a board runs it.

Everything that simulates a node runs NodeApp: source -> frames -> the flash outbox -> the firmware's own MQTT
client (QoS 1, retained status, last will), with a state directory standing in for the board's flash. The host
only writes the node's configuration: ``firmware_config`` builds it for ``edgegen node run``, the demo and
``edgegen replay``; ``VirtualNode`` runs one node on the firmware's test signal (``sine``).
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from edgegen.firmware_py.app import NodeApp
from edgegen.firmware_py.config import validate
from edgegen.firmware_py.errors import ConfigError
from edgegen.firmware_py.node import StreamNode
from edgegen.gateway.config import NodeSettings
from edgegen.simulators.errors import LinkError, SimulatorError

# The link of a host-side node: reconnects within seconds (tests and drills recover quickly) and no send-rate
# limit worth the name (a simulated fleet is bounded by the broker, not by a board's politeness on a thin link).
LINK = {
    "keepalive_s": 10,
    "max_inflight": 16,
    "ack_timeout_ms": 2000,
    "max_dup_retries": 10,
    "drain_per_s": 10000,
    "burst": 1000,
    "backoff_min_ms": 100,
    "backoff_max_ms": 2000,
}
MAX_SLOT = 65535  # bytes: the firmware's largest outbox slot
SLOTS = 256  # outbox messages: at 20 frames/s, 12 s of broker outage before the oldest is overwritten


class NodeConfigError(SimulatorError, ValueError):
    """The firmware refused a virtual node's configuration (firmware_py/config.py names the key)."""


def frame_bytes(node_id: str, channels: int, window: int) -> int:
    """One int16 frame's size (firmware_py/frame.py: header with node id, a scale per channel, values, CRC)."""
    return 30 + len(node_id) + 4 * channels + 2 * window * channels + 4


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an mqtt:// or mqtts:// URL, as the firmware's configuration wants them."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls


def firmware_config(
    site: str,
    node_id: str,
    broker_url: str,
    state_dir: Path,
    stream: dict[str, Any],
    *,
    speed: float,
    slots: int = SLOTS,
    slot_size: int | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """A validated firmware configuration for a virtual node with one ``stream`` (the config.json entry).

    The outbox slot fits one frame with its topic, unless ``slot_size`` asks for more. With an mqtts:// URL the
    node encrypts without checking the broker's certificate (the firmware's behaviour without ``mqtt.ca``).
    """
    host, port, tls = broker_address(broker_url)
    frame = frame_bytes(node_id, stream["channels"], stream["window"])
    room = max(1024, frame + 128 + len(site) + len(node_id) + len(stream["name"]))
    if room > MAX_SLOT:
        raise NodeConfigError(
            f"node {node_id}: a frame of {stream['window']} x {stream['channels']} samples is {frame} bytes; "
            f"the firmware's outbox holds messages up to {MAX_SLOT} bytes (use a smaller window)"
        )
    raw = {
        "site": site,
        "node_id": node_id,
        "mqtt": {"host": host, "port": port, "tls": tls, "timeout_ms": round(timeout_s * 1000), **LINK},
        "state_dir": str(state_dir),
        "speed": speed,
        "outbox": {"slots": slots, "slot_size": min(MAX_SLOT, max(room, slot_size or 0))},
        "status_interval_s": 10,
        "streams": [stream],
    }
    try:
        return validate(raw)
    except ConfigError as exc:
        raise NodeConfigError(f"node {node_id}: {exc}") from None


def sine_stream(settings: NodeSettings) -> dict[str, Any]:
    """A virtual node's stream: the firmware's test signal, channel c a sine at (c + 1) x 1.3 Hz plus noise."""
    return {
        "name": settings.stream,
        "channels": settings.channels,
        "window": settings.window,
        "rate_hz": settings.sample_rate_hz,
        "scales": [settings.scale] * settings.channels,
        "source": {"kind": "sine", "seed": settings.seed},
    }


@dataclass(frozen=True, slots=True)
class RunResult:
    frames: int
    values: int
    seconds: float
    dropped: int  # overwritten in the full outbox before the broker had them (never delivered)


class _App(NodeApp):
    """NodeApp with a stop from the host: once ``stop`` is set the next window is not sampled and the stream
    ends as a source at its end would, so the firmware's own loop, on its one schedule, returns."""

    stop: threading.Event | None = None

    def step(self, node: Any) -> bool:
        if self.stop is not None and self.stop.is_set():
            return False
        return super().step(node)


class _Journal:
    """The stream's link seen from the host: every payload the stream hands to its uplink (the outbox), copied,
    in order. The firmware is untouched: StreamNode publishes through any object with publish()."""

    def __init__(self, uplink: Any, journal: list[bytes]) -> None:
        self._uplink = uplink
        self._journal = journal

    def publish(self, topic: bytes, payload: memoryview, qos: int) -> None:
        self._uplink.publish(topic, payload, qos)
        self._journal.append(bytes(payload))  # after the push: a payload the outbox refused was not sent


class VirtualNode:
    """One NodeApp with a sine stream from ``settings``, its flash in ``state_dir`` (a temporary directory,
    removed on close, when None).

    ``speed``: windows go out in real time (1), k times faster (k) or as fast as the broker acknowledges (0).
    ``journal``: when given, every frame the node stores for delivery is appended to it.
    """

    def __init__(
        self,
        settings: NodeSettings,
        broker_url: str,
        *,
        state_dir: Path | None = None,
        speed: float = 1.0,
        t_start_us: int | None = None,
        timeout_s: float = 10.0,
        slots: int = SLOTS,
        slot_size: int | None = None,
        journal: list[bytes] | None = None,
    ) -> None:
        self.settings = settings
        self.broker_url = broker_url
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"edgegen-{settings.node_id}-")
            state_dir = Path(self._tmp.name)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._thread: threading.Thread | None = None
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._closed = False
        try:
            cfg = firmware_config(
                settings.site,
                settings.node_id,
                broker_url,
                state_dir,
                sine_stream(settings),
                speed=speed,
                slots=slots,
                slot_size=slot_size,
                timeout_s=timeout_s,
            )
            self.app = _App(cfg, t_start_us)
        except BaseException:
            if self._tmp is not None:
                self._tmp.cleanup()
            raise
        self.stream: StreamNode = self.app.streams[0].node
        if journal is not None:
            self.stream.link = _Journal(self.app.uplink, journal)
        self.window_s = self.stream.source.n_samples * self.stream.source.period_us / 1e6

    def connect(self) -> None:
        """Make the node's first connection now (a board would keep retrying): a wrong URL fails at once."""
        uplink = self.app.uplink
        uplink.service()
        if not uplink.connected:
            host, port, _ = broker_address(self.broker_url)
            raise LinkError(f"cannot reach the broker at {host}:{port}: {uplink.last_error}")

    def run(
        self, *, frames: int | None = None, duration_s: float | None = None, stop: threading.Event | None = None
    ) -> RunResult:
        """Sample and send until ``frames`` windows, ``duration_s`` of signal, or ``stop`` is set (each, if given).

        A stop is seen before the next window is sampled (at most a window's time later) and ends the stream:
        the node cannot run again.
        """
        limit = frames
        if duration_s is not None:
            fit = math.floor(duration_s / self.window_s + 1e-9)
            limit = fit if limit is None else min(limit, fit)
        before = self.stream.frames_sent
        started = time.monotonic()
        self.app.stop = stop
        self.app.run(limit)
        sent = self.stream.frames_sent - before
        return RunResult(
            sent, sent * self.stream.encoder.n_values, time.monotonic() - started, self.app.outbox.dropped
        )

    def publish(self, topic: str, payload: bytes) -> None:
        """Store any message for QoS 1 delivery, as the node's own frames are (the demo's malformed messages)."""
        self.app.uplink.publish(topic.encode(), payload, 1)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until the broker has acknowledged everything in the outbox; LinkError after ``timeout_s``."""
        if not self.app.uplink.flush(round(timeout_s * 1000)):
            left = self.app.outbox.depth()
            raise LinkError(f"{self.settings.node_id}: {left} messages unacknowledged after {timeout_s:g} s")

    def close(self) -> None:
        """A clean stop: retained status ``offline``, DISCONNECT (so no last will), files closed."""
        if self._closed:
            return
        self._closed = True
        try:
            self.app.close()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()

    def session(
        self,
        *,
        frames: int | None = None,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        drain_s: float = 60.0,
    ) -> RunResult:
        """A node's whole run: connect, run, wait until every frame is acknowledged, close (also on error)."""
        try:
            self.connect()
            result = self.run(frames=frames, duration_s=duration_s, stop=stop)
            self.flush(drain_s)
            return result
        finally:
            self.close()

    def start(self, **session: Any) -> None:
        """Run ``session(**session)`` on a thread; ``join`` returns its result or raises its error."""

        def main() -> None:
            try:
                self._result = self.session(**session)
            except BaseException as exc:  # re-raised by join()
                self._error = exc

        self._thread = threading.Thread(target=main, name=f"node-{self.settings.node_id}", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> RunResult:
        if self._thread is None:
            raise SimulatorError(f"{self.settings.node_id}: not started")
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise SimulatorError(f"{self.settings.node_id}: still running after {timeout_s} s")
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise SimulatorError(f"{self.settings.node_id}: ended without a result")
        return self._result

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def join_all(nodes: list[VirtualNode], timeout_s: float | None = None) -> list[RunResult]:
    """Wait for every started node; then raise the first node's error, if any, or return their results."""
    outcomes: list[RunResult | BaseException] = []
    for node in nodes:
        try:
            outcomes.append(node.join(timeout_s))
        except BaseException as exc:  # raised once every node has ended
            outcomes.append(exc)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [o for o in outcomes if isinstance(o, RunResult)]
