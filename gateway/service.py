"""The gateway service: MQTT ingest -> validate -> queue -> batched storage writes.

Two tasks share a bounded queue. The ingest task holds a persistent MQTT session (fixed client id, clean session
off, QoS 1), so messages published while the gateway is away wait at the broker. The writer task batches accepted
frames and writes them, retrying with jittered backoff while storage is unavailable; a full queue pushes back on
ingest instead of dropping.

Limitation until the disk spool lands (issue 6): aiomqtt acknowledges a message when it arrives, so frames still
in the queue when the process dies are lost. A clean stop drains the queue first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Sequence

import aiomqtt

from gateway.backoff import Backoff
from gateway.config import Settings
from gateway.deadletter import DeadLetterStore
from gateway.metrics import GatewayMetrics
from gateway.protocol import FrameError, data_filter, data_topic, encode, parse_topic
from gateway.rejects import RejectHandler
from gateway.stats import NodeTable
from gateway.storage import Storage, StorageRejected, StorageUnavailable, create_storage
from gateway.storage.errors import LineProtocolError
from gateway.storage.records import Record
from gateway.validate import validate

log = logging.getLogger(__name__)

STORAGE_REJECTED = "storage_rejected"


class Gateway:
    def __init__(
        self,
        settings: Settings,
        storage: Storage | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage if storage is not None else create_storage(settings.storage)
        self.metrics = metrics or GatewayMetrics()
        self.nodes = NodeTable()
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[Record] = asyncio.Queue(maxsize=settings.gateway.queue_frames)
        self._rejects: RejectHandler | None = None
        self._dead_letters: DeadLetterStore | None = None

    @property
    def dead_letters(self) -> DeadLetterStore:
        if self._dead_letters is None:
            raise RuntimeError("the gateway is not running")
        return self._dead_letters

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop ingesting, drain the queue to storage and close."""
        gw = self.settings.gateway
        dead_letters = DeadLetterStore(
            gw.state_dir / "dead-letters.sqlite", gw.dead_letter_max, gw.dead_letter_payload_bytes
        )
        self._dead_letters = dead_letters
        self._rejects = RejectHandler(self.metrics, dead_letters, gw.reject_log_interval_s)
        try:
            await self.storage.open()
            log.info("storage %s open", self.storage.name)
            try:
                await self._serve(stop)
            finally:
                await self.storage.close()
        finally:
            dead_letters.close()
            log.info("gateway stopped")

    async def _serve(self, stop: asyncio.Event) -> None:
        ingest = asyncio.create_task(self._ingest(), name="edgegen-ingest")
        writer = asyncio.create_task(self._write_loop(), name="edgegen-writer")
        stopping = asyncio.create_task(stop.wait(), name="edgegen-stop")
        try:
            done, _ = await asyncio.wait({ingest, writer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()  # an ingest or writer task only ends by raising: surface it
        finally:
            stopping.cancel()
            await _cancel(ingest)
            await self._drain(writer)
            await _cancel(writer)

    async def _drain(self, writer: asyncio.Task[None]) -> None:
        if writer.done() or self._queue.empty():
            return
        log.info("draining %d queued frames to storage", self._queue.qsize())
        try:
            await asyncio.wait_for(self._queue.join(), timeout=self.settings.storage.timeout_s * 3)
        except TimeoutError:
            log.error("storage did not take %d queued frames before shutdown; they are lost", self._queue.qsize())

    # -- ingest ---------------------------------------------------------------------------------------------

    async def _ingest(self) -> None:
        mqtt = self.settings.mqtt
        backoff = Backoff()
        while True:
            try:
                async with aiomqtt.Client(
                    mqtt.host,
                    mqtt.port,
                    identifier=mqtt.client_id,
                    clean_session=False,
                    keepalive=mqtt.keepalive_s,
                    timeout=mqtt.timeout_s,
                    tls_context=ssl.create_default_context() if mqtt.tls else None,
                ) as client:
                    await client.subscribe(data_filter(mqtt.site), qos=1)
                    log.info("subscribed to %s on %s", data_filter(mqtt.site), mqtt.url)
                    backoff.reset()
                    self.connected.set()
                    async for message in client.messages:
                        await self.on_message(str(message.topic), _as_bytes(message.payload))
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                delay = backoff.next()
                log.warning("MQTT %s: %s; reconnecting in %.1f s", mqtt.url, exc, delay)
                await asyncio.sleep(delay)

    async def on_message(self, topic: str, payload: bytes) -> None:
        """Validate one data-topic message and queue it for storage, or reject it with its cause."""
        self.metrics.messages_received.inc()
        try:
            record = validate(topic, payload, self.settings.gateway.max_frame_bytes)
        except FrameError as exc:
            self._reject(topic, payload, exc)
            return
        if record.nonfinite:
            self.metrics.values_nonfinite.inc(record.nonfinite)
        self.metrics.frames_accepted.inc()
        await self._queue.put(record)
        self.metrics.queue_depth.set(self._queue.qsize())

    def _reject(self, topic: str, payload: bytes, error: FrameError) -> None:
        if self._rejects is None:
            raise RuntimeError("the gateway is not running")
        self._rejects.reject(topic, payload, error)
        with contextlib.suppress(FrameError):
            node = parse_topic(topic)
            self.nodes[(node.site, node.node)].rejects += 1

    # -- storage --------------------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        gw = self.settings.gateway
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + gw.flush_interval_s
            while len(batch) < gw.batch_frames:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
                self.metrics.queue_depth.set(self._queue.qsize())

    async def _store(self, batch: Sequence[Record]) -> None:
        """Write ``batch``, waiting out unavailability; isolate and dead-letter frames storage refuses."""
        backoff = Backoff()
        while True:
            started = time.perf_counter()
            try:
                values = await self.storage.write(batch)
            except StorageUnavailable as exc:
                self.metrics.storage_errors.labels(kind="unavailable").inc()
                delay = max(exc.retry_after_s or 0.0, backoff.next())
                log.warning("storage unavailable (%s); retrying %d frames in %.1f s", exc, len(batch), delay)
                await asyncio.sleep(delay)
                continue
            except (StorageRejected, LineProtocolError) as exc:
                self.metrics.storage_errors.labels(kind="rejected").inc()
                if len(batch) == 1:
                    self._dead_letter_refused(batch[0], exc)
                    return
                for record in batch:  # one refused frame must not take the batch's valid frames with it
                    await self._store([record])
                return
            self.metrics.storage_write_seconds.observe(time.perf_counter() - started)
            self.metrics.frames_stored.inc(len(batch))
            self.metrics.values_stored.inc(values)
            for record in batch:
                stats = self.nodes[(record.site, record.node)]
                stats.frames += 1
                stats.values += record.storable_values
            return

    def _dead_letter_refused(self, record: Record, error: Exception) -> None:
        topic = str(data_topic(record.site, record.node, record.stream))
        log.error("storage refused frame %s seq %d: %s", topic, record.frame.seq, error)
        self.metrics.frames_rejected.labels(cause=STORAGE_REJECTED).inc()
        evicted = self.dead_letters.add(topic, encode(record.frame), STORAGE_REJECTED, str(error))
        if evicted:
            self.metrics.dead_letters_dropped.inc(evicted)

    @property
    def stored_frames(self) -> int:
        return int(self.metrics.value("edgegen_frames_stored_total"))

    @property
    def queued_frames(self) -> int:
        return self._queue.qsize()


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return b"" if payload is None else str(payload).encode()


async def _cancel(task: asyncio.Task[None]) -> None:
    if task.done():
        return  # its outcome was already surfaced by run()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
