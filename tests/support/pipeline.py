"""Helpers for end-to-end tests: a gateway on a background thread, virtual nodes, checksums of samples."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from edgegen.gateway.config import NodeSettings, Settings
from edgegen.gateway.protocol import decode
from edgegen.gateway.service import Gateway
from edgegen.gateway.storage.records import Record, points
from edgegen.simulators.node import VirtualNode, join_all


class GatewayThread:
    """Run a Gateway on its own event loop in a thread; stop it cleanly on exit and re-raise what it raised."""

    def __init__(self, settings: Settings, connect_timeout_s: float = 15.0) -> None:
        self.settings = settings
        self.gateway = Gateway(settings)
        self._timeout = connect_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="gateway", daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await self.gateway.run(self._stop)

        try:
            asyncio.run(run())
        except BaseException as exc:  # surfaced in __exit__
            self._error = exc
            self._started.set()

    def __enter__(self) -> Self:
        self._thread.start()
        self._started.wait(self._timeout)
        deadline = time.monotonic() + self._timeout
        while not self.gateway.connected.is_set():
            if self._error is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"gateway did not connect: {self._error!r}")
            time.sleep(0.02)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            raise RuntimeError("gateway did not stop within 60 s")
        if self._error is not None and exc is None:
            raise self._error

    def wait_stored(self, frames: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.gateway.stored_frames < frames:
            if self._error is not None:
                raise self._error
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.gateway.stored_frames} of {frames} frames stored after {timeout_s} s")
            time.sleep(0.05)

    def wait_received(self, messages: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.gateway.metrics.value("edgegen_messages_received_total") < messages:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {messages} messages received after {timeout_s} s")
            time.sleep(0.05)


def node_settings(site: str, n_nodes: int, channels: int = 3, window: int = 50) -> list[NodeSettings]:
    return [
        NodeSettings(site=site, node_id=f"node-{i}", stream="vib", channels=channels, window=window, seed=i + 1)
        for i in range(n_nodes)
    ]


def publish_frames(url: str, nodes: list[NodeSettings], frames: int, t0_us: int) -> dict[str, list[bytes]]:
    """Run each node (the firmware's NodeApp) for ``frames`` windows as fast as the broker acknowledges, until
    every frame is acknowledged; return what each one sent."""
    sent: dict[str, list[bytes]] = {n.node_id: [] for n in nodes}
    running = [VirtualNode(n, url, speed=0, t_start_us=t0_us, journal=sent[n.node_id]) for n in nodes]
    for node in running:
        node.start(frames=frames)
    assert [r.dropped for r in join_all(running)] == [0] * len(nodes)
    return sent


def sample_lines(site: str, stream: str, payloads: Iterable[bytes]) -> list[str]:
    """'<ts_us> <field> <value>' for every sample value the frames carry, in the form storage returns."""
    return [
        f"{p.ts_us} {name} {value!r}"
        for raw in payloads
        for p in points(Record.of(site, stream, decode(raw)))
        for name, value in p.fields
    ]


def checksum(lines: Iterable[str]) -> tuple[int, str]:
    ordered = sorted(lines)
    return len(ordered), hashlib.sha256("\n".join(ordered).encode()).hexdigest()
