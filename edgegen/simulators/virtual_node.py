"""Virtual nodes: the firmware_py sampling loop on CPython, publishing through paho-mqtt.

The firmware's own modules (source, frame encoder, stream loop) run unchanged; only the link differs from a board.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from edgegen.firmware_py.frame import INT16, FrameEncoder
from edgegen.firmware_py.node import StreamNode
from edgegen.firmware_py.sources import SineSource
from edgegen.gateway.config import NodeSettings
from edgegen.simulators.paho_link import PahoLink

AMPLITUDE = 20_000  # int16 counts: leaves headroom for the noise
NOISE = 400


def period_us(settings: NodeSettings) -> int:
    return round(1_000_000 / settings.sample_rate_hz)


def build_node(settings: NodeSettings, link: PahoLink, t_start_us: int) -> StreamNode:
    """A firmware StreamNode fed by the firmware's test-signal source; channel c oscillates at (c + 1) * 1.3 Hz."""
    period = period_us(settings)
    source = SineSource(
        settings.channels,
        settings.window,
        period,
        t_start_us,
        [1.3 * (c + 1) for c in range(settings.channels)],
        AMPLITUDE,
        NOISE,
        settings.seed,
    )
    encoder = FrameEncoder(
        settings.node_id, settings.window, settings.channels, period, INT16, [settings.scale] * settings.channels
    )
    return StreamNode(settings.site, settings.node_id, settings.stream, source, link, encoder)


@dataclass(frozen=True, slots=True)
class RunResult:
    frames: int
    values: int
    seconds: float


def run_node(
    node: StreamNode,
    *,
    frames: int | None = None,
    duration_s: float | None = None,
    speed: float | None = 1.0,
    stop: threading.Event | None = None,
) -> RunResult:
    """Publish windows until ``frames`` are sent, ``duration_s`` of signal time has passed, or ``stop`` is set.

    Each window goes out when its last sample would have been taken: at real time divided by ``speed``, or as
    fast as the link takes them when ``speed`` is None.
    """
    stop = stop or threading.Event()
    window_s = node.source.n_samples * node.source.period_us / 1e6
    started = time.monotonic()
    sent = 0
    while not stop.is_set():
        if frames is not None and sent >= frames:
            break
        if duration_s is not None and (sent + 1) * window_s > duration_s + 1e-9:
            break
        if speed is not None:
            due = started + (sent + 1) * window_s / speed
            if stop.wait(max(0.0, due - time.monotonic())):
                break
        if not node.step():
            break
        sent += 1
    return RunResult(sent, sent * node.encoder.n_values, time.monotonic() - started)
