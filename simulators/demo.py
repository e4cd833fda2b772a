"""``edgegen demo``: the whole path on one machine with nothing installed.

An embedded broker (amqtt) unless ``--broker`` names one, the gateway storing into SQLite unless ``--influx``
names a server, and virtual nodes running the firmware code for a bounded time. One more node, ``faulty``, sends
one valid frame and then one malformed message per rejection cause, so the summary shows the gateway refusing each
one. At the end the stored values are counted back from storage and compared with what the nodes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.config import NodeSettings, Settings
from gateway.protocol import data_topic, decode
from gateway.service import Gateway
from gateway.storage import ValueCounter
from simulators.embedded_broker import EmbeddedBroker
from simulators.errors import SimulatorError
from simulators.faults import malformed_messages
from simulators.paho_link import PahoLink
from simulators.virtual_node import build_node, run_node

log = logging.getLogger(__name__)


@dataclass
class NodeReport:
    node: str
    frames_sent: int = 0
    values_sent: int = 0
    frames_stored: int = 0
    values_stored: int | None = None  # counted back from storage, when the backend can count
    rejects: int = 0


@dataclass
class DemoReport:
    broker: str
    storage: str
    seconds: float
    nodes: list[NodeReport] = field(default_factory=list)
    rejects_by_cause: dict[str, int] = field(default_factory=dict)
    injected: int = 0

    @property
    def complete(self) -> bool:
        """Every value sent was stored, and every injected message was rejected."""
        values_ok = all(n.values_stored in (None, n.values_sent) for n in self.nodes)
        frames_ok = all(n.frames_stored == n.frames_sent for n in self.nodes)
        return values_ok and frames_ok and sum(self.rejects_by_cause.values()) == self.injected


@contextlib.asynccontextmanager
async def _broker(settings: Settings, embedded: bool) -> AsyncIterator[Settings]:
    if not embedded:
        yield settings
        return
    async with EmbeddedBroker() as broker:
        mqtt = settings.mqtt.model_copy(update={"url": broker.url, "protocol": "3.1.1"})  # amqtt: MQTT 3.1.1 only
        yield settings.model_copy(update={"mqtt": mqtt})


async def run_demo(
    settings: Settings,
    *,
    nodes: int = 3,
    duration_s: float = 10.0,
    embedded_broker: bool = True,
    inject_faults: bool = True,
) -> DemoReport:
    node_settings = [
        settings.node.model_copy(update={"node_id": f"node-{i + 1}", "seed": i + 1}) for i in range(nodes)
    ]
    site = settings.node.site
    started_wall_us = time.time_ns() // 1000
    started = time.monotonic()
    injected = 0
    async with _broker(settings, embedded_broker) as live:
        settings = live
        gateway = Gateway(settings)
        stop = asyncio.Event()
        gateway_task = asyncio.create_task(gateway.run(stop))
        try:
            await _wait_connected(gateway, gateway_task, settings.mqtt.timeout_s)
            sent = list(
                await asyncio.gather(
                    *(
                        asyncio.to_thread(_run_one, settings, ns, started_wall_us, duration_s)
                        for ns in node_settings
                    )
                )
            )
            if inject_faults:
                faulty = settings.node.model_copy(update={"node_id": "faulty", "seed": 99})
                frames, values, injected = await asyncio.to_thread(_inject, settings, faulty)
                node_settings.append(faulty)
                sent.append((frames, values))
            expected_frames = sum(frames for frames, _ in sent)
            await _wait_stored(gateway, gateway_task, expected_frames, injected, settings.storage.timeout_s * 3)
            counts = (
                await gateway.storage.count_values(site, started_wall_us)
                if isinstance(gateway.storage, ValueCounter)
                else None
            )
        finally:
            stop.set()
            await gateway_task
    stats = gateway.nodes.snapshot()
    report = DemoReport(
        broker=settings.mqtt.url if not embedded_broker else "embedded amqtt",
        storage=_describe_storage(settings),
        seconds=time.monotonic() - started,
        injected=injected,
    )
    for ns, (frames, values) in zip(node_settings, sent, strict=True):
        node_stats = stats.get((site, ns.node_id))
        report.nodes.append(
            NodeReport(
                node=ns.node_id,
                frames_sent=frames,
                values_sent=values,
                frames_stored=node_stats.frames if node_stats else 0,
                values_stored=None if counts is None else counts.get((ns.node_id, ns.stream), 0),
                rejects=node_stats.rejects if node_stats else 0,
            )
        )
    report.rejects_by_cause = gateway.metrics.rejects_by_cause()
    return report


def _run_one(settings: Settings, node: NodeSettings, t_start_us: int, duration_s: float) -> tuple[int, int]:
    link = PahoLink(settings.mqtt.url, node.site, node.node_id, settings.mqtt.timeout_s)
    link.connect()
    try:
        result = run_node(build_node(node, link, t_start_us), duration_s=duration_s, stop=threading.Event())
        link.flush()
    finally:
        link.close()
    return result.frames, result.values


def _inject(settings: Settings, node: NodeSettings) -> tuple[int, int, int]:
    """Publish one valid frame, then one malformed message per rejection cause, on ``node``'s data topic.

    Returns (valid frames, valid values, malformed messages).
    """
    journal: list[bytes] = []
    link = PahoLink(settings.mqtt.url, node.site, node.node_id, settings.mqtt.timeout_s, journal=journal)
    link.connect()
    try:
        template = build_node(node, link, time.time_ns() // 1000)
        template.step()  # one valid window, recorded in the journal; the broken copies derive from it
        link.flush()
        valid = decode(journal[0])
        topic = str(data_topic(node.site, node.node_id, node.stream))
        bad = malformed_messages(valid, other_node="impostor")
        for payload in bad.values():
            link.publish(topic, payload, 1)
        link.flush()
    finally:
        link.close()
    return 1, valid.n_samples * valid.n_channels, len(bad)


async def _wait_connected(gateway: Gateway, task: asyncio.Task[None], timeout_s: float) -> None:
    waiter = asyncio.create_task(gateway.connected.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task in done:
        task.result()
    if waiter not in done:
        raise SimulatorError(f"the gateway did not connect to the broker within {timeout_s} s")


async def _wait_stored(
    gateway: Gateway, task: asyncio.Task[None], frames: int, injected: int, timeout_s: float
) -> None:
    """Wait until storage took every frame the nodes sent and every injected message was rejected."""
    deadline = time.monotonic() + timeout_s
    while gateway.stored_frames < frames or sum(gateway.metrics.rejects_by_cause().values()) < injected:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            log.error("gave up waiting: %d of %d frames stored", gateway.stored_frames, frames)
            return
        await asyncio.sleep(0.05)


def _describe_storage(settings: Settings) -> str:
    if settings.storage.kind == "sqlite":
        return f"SQLite {settings.storage.sqlite_path}"
    return f"{settings.storage.kind} {settings.storage.influx_url}"
