"""The gateway daemon: MQTT ingest -> validate -> spool -> analytics -> storage, observable over HTTP.

Three loops share the disk spool:
- ingest: takes what the paho thread received, validates it, commits it to the spool (rejects to the dead-letter
  store, status messages to the node registry), and only then acknowledges it to the broker;
- writer: takes the oldest spooled frames, runs the generative model on them, writes frames and model outputs to
  storage through the :class:`~gateway.writer.StorageWriter` (retries, 413 splits, dead letters), and marks them
  done in the spool;
- housekeeping: prunes old de-duplication keys, checks for new model versions, refreshes gauges and heartbeats.

A crash loses nothing: acknowledged messages are in the spool, unacknowledged ones are redelivered, and storage
writes are idempotent (points keep their node timestamps). On SIGTERM the gateway stops ingesting, writes what the
spool holds for up to ``gateway.drain_timeout_s`` and exits; what is left stays in the spool for the next start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO, TypeVar

from edgegen.gateway.analytics.engine import Analytics
from edgegen.gateway.backoff import Backoff
from edgegen.gateway.config import Settings
from edgegen.gateway.deadletter import DeadLetterStore
from edgegen.gateway.errors import ConfigError
from edgegen.gateway.fleet import REGISTRY_FILE, BadStatus, NodeRegistry
from edgegen.gateway.health import Health
from edgegen.gateway.http_api import OperatorServer
from edgegen.gateway.ingest import Message, MqttIngest
from edgegen.gateway.metrics import GatewayMetrics
from edgegen.gateway.protocol import Channel, FrameError, data_topic, decode_message, encode, parse_topic
from edgegen.gateway.protocol.errors import BadTopic
from edgegen.gateway.rejects import RejectHandler
from edgegen.gateway.spool import Incoming, Spool, Spooled, SpoolError
from edgegen.gateway.storage import Storage, StorageError, create_storage
from edgegen.gateway.storage.records import Record, Writable
from edgegen.gateway.validate import validate
from edgegen.gateway.writer import StorageWriter

log = logging.getLogger(__name__)

SPOOL_FULL = "spool_full"
SPOOL_CORRUPT = "spool_corrupt"
DECODED_CACHE_BYTES = 64 << 20  # sample bytes of validated frames kept for the writer
T = TypeVar("T")


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
        self.health = Health(expected=("mqtt", "storage"))
        self.connected = asyncio.Event()
        self.analytics: Analytics | None = None
        self.operator: OperatorServer | None = None
        self._dead_letters: DeadLetterStore | None = None
        self._registry: NodeRegistry | None = None
        self._rejects: RejectHandler | None = None
        self._spool: Spool | None = None
        self._ingest: MqttIngest | None = None
        self._writer: StorageWriter | None = None
        self._spool_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgegen-spool")
        # the model runs off the event loop, so ingest, acknowledgements and HTTP never wait for a calibration
        self._analytics_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgegen-analytics")
        self._lock: TextIO | None = None
        self._decoded_bytes = 0
        self._spooled = asyncio.Event()  # the writer's wake-up
        # frames validated at ingest, by spool id: the writer need not decode them again (after a restart it does)
        self._decoded: collections.OrderedDict[int, Record] = collections.OrderedDict()
        self._stopping = asyncio.Event()  # aborts storage retries at the drain deadline

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def dead_letters(self) -> DeadLetterStore:
        if self._dead_letters is None:
            raise RuntimeError("the gateway is not running")
        return self._dead_letters

    @property
    def registry(self) -> NodeRegistry:
        """The node registry: opened by :meth:`run` (after the state directory's lock) and kept after it returns,
        closed, so its traffic counters can be read for a summary."""
        if self._registry is None:
            raise RuntimeError("the gateway has not run")
        return self._registry

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            raise RuntimeError("the gateway is not running")
        return self._spool

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop ingesting, drain the spool to storage (bounded) and close."""
        gw = self.settings.gateway
        gw.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_state_dir(gw.state_dir)
        self._dead_letters = DeadLetterStore(
            gw.state_dir / "dead-letters.sqlite", gw.dead_letter_max, gw.dead_letter_payload_bytes
        )
        self._rejects = RejectHandler(self.metrics, self._dead_letters, gw.reject_log_interval_s)
        try:
            self._spool = await self._in_spool(
                Spool,
                gw.state_dir / "spool.sqlite",
                gw.spool_max_frames,
                gw.spool_overflow,
                gw.dedup_window_s,
                gw.spool_sync,
            )
            if self._spool.salvage is not None:
                s = self._spool.salvage
                self.metrics.spool_salvaged.inc(s.salvaged)
                self.metrics.spool_quarantined.inc(s.lost)
            self._registry = NodeRegistry(gw.state_dir / REGISTRY_FILE, gw.offline_after_s)
            loop = asyncio.get_running_loop()
            self._ingest = MqttIngest(self.settings.mqtt, loop)
            a = self.settings.analytics
            self.analytics = (
                Analytics(a, self.metrics.registry, self._ingest.publish)
                if a.enabled and (a.bindings or a.decoder is not None)
                else None
            )
            self._writer = StorageWriter(
                self.storage,
                on_dead_letter=self._dead_letter_refused,
                on_alert=lambda text: self.health.set("storage", False, text),
                registry=self.metrics.registry,
            )
            self.operator = OperatorServer(
                self.health, self.metrics.registry, gw.http_host, gw.http_port, {"/nodes": self._nodes_json}
            )
            await self.operator.start()
            await self._serve(stop)
        finally:
            await self._close()

    async def _close(self) -> None:
        if self.operator is not None:
            with contextlib.suppress(Exception):
                await self.operator.stop()
        if self._registry is not None:
            self._registry.close()
        if self._spool is not None:
            await self._in_spool(self._spool.close)
        self._spool_thread.shutdown(wait=True)
        self._analytics_thread.shutdown(wait=True)
        if self._dead_letters is not None:
            self._dead_letters.close()
        if self._lock is not None:
            self._lock.close()
        log.info("gateway stopped")

    async def _serve(self, stop: asyncio.Event) -> None:
        assert self._ingest is not None
        self._ingest.start()
        ingest = asyncio.create_task(self._ingest_loop(), name="edgegen-ingest")
        writer = asyncio.create_task(self._write_loop(), name="edgegen-writer")
        housekeeping = asyncio.create_task(self._housekeeping(), name="edgegen-housekeeping")
        stopping = asyncio.create_task(stop.wait(), name="edgegen-stop")
        try:
            done, _ = await asyncio.wait(
                {ingest, writer, housekeeping, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done - {stopping}:
                task.result()  # a loop only ends by raising: surface it
        finally:
            stopping.cancel()
            await _cancel(ingest)
            await _cancel(housekeeping)
            with contextlib.suppress(Exception):  # unacknowledged messages stay with the broker's session
                await self._ingest.stop()
            self.connected.clear()
            await self._drain(writer)

    async def _drain(self, writer: asyncio.Task[None]) -> None:
        """Let the writer empty the spool for up to ``drain_timeout_s``; what remains is written at next start."""
        timeout = self.settings.gateway.drain_timeout_s
        if not writer.done():
            pending = self.spool.pending
            if pending:
                log.info("draining %d spooled frames to storage (up to %.0f s)", pending, timeout)
            deadline = time.monotonic() + timeout
            while self.spool.pending and not writer.done() and time.monotonic() < deadline:
                self._spooled.set()
                await asyncio.sleep(0.05)
            self._stopping.set()
            await _cancel(writer)
        error = writer.exception() if writer.done() and not writer.cancelled() else None
        if error is not None:
            raise error  # e.g. StorageNotFound while draining: exit 1, not a silent 0
        if self.spool.pending:
            log.warning("%d frames stay in the spool for the next start", self.spool.pending)

    # -- ingest ----------------------------------------------------------------------------------------------

    async def _ingest_loop(self) -> None:
        ingest = self._ingest
        assert ingest is not None
        while True:
            self.health.heartbeat("ingest", stale_after_s=60)
            batch = await ingest.batch(1000, wait_s=1.0)
            self._sync_connection()
            while batch:
                try:
                    await self._spool_batch(batch)
                    break
                except SpoolError as exc:  # not acknowledged: retried here, or redelivered if we die
                    self.health.set("spool", False, str(exc))
                    log.error("%s; retrying %d messages in 1 s", exc, len(batch))
                    await asyncio.sleep(1.0)
            if batch:
                self.health.set("spool", True, "ok")
                self.metrics.spool_depth.set(self.spool.pending)
                del batch

    def _sync_connection(self) -> None:
        assert self._ingest is not None
        up = self._ingest.connected.is_set()
        self.health.set("mqtt", up, "connected" if up else "not connected to " + self.settings.mqtt.url)
        if up:
            self.connected.set()
        else:
            self.connected.clear()

    async def _spool_batch(self, messages: list[Message]) -> None:
        """Validate, commit to the spool, then acknowledge: the order that makes a crash lose nothing."""
        assert self._ingest is not None
        incoming: list[Incoming] = []
        validated: list[Record] = []
        now_us = time.time_ns() // 1000
        for m in messages:
            try:
                topic = parse_topic(m.topic)
            except BadTopic as exc:
                self.metrics.messages_received.inc()
                self._reject(m.topic, m.payload, exc, now_us)
                continue
            if topic.channel is Channel.STATUS:
                self.metrics.status_messages.inc()
                self._status(m.topic, m.payload, now_us, m.retain)
                continue
            self.metrics.messages_received.inc()
            try:
                r = validate(m.topic, m.payload, self.settings.gateway.max_frame_bytes)
            except FrameError as exc:
                self._reject(m.topic, m.payload, exc, now_us)
                continue
            if r.nonfinite:
                self.metrics.values_nonfinite.inc(r.nonfinite)
            self.metrics.frames_accepted.inc()
            incoming.append(Incoming(r.site, r.node, r.stream, r.frame.seq, m.topic, m.payload, r.frame.t0_us))
            validated.append(r)
        if incoming:
            result = await self._in_spool(self.spool.add, incoming)
            self._remember_decoded(result.ids, validated)
            self.metrics.frames_duplicate.inc(result.duplicates)
            if result.dropped_oldest:
                self.metrics.spool_overflow.labels(policy="drop-oldest").inc(result.dropped_oldest)
                log.error("spool full: dropped the %d oldest waiting frames", result.dropped_oldest)
            for index in result.rejected:
                self.metrics.spool_overflow.labels(policy="reject-new").inc()
                item = incoming[index]
                self.metrics.frames_rejected.labels(cause=SPOOL_FULL).inc()
                self.registry.frame_rejected(item.site, item.node, now_us)
                self.dead_letters.add(item.topic, item.payload, SPOOL_FULL, "the spool is full (reject-new)")
            if any(result.accepted):
                self._spooled.set()
        self.metrics.frames_acked.inc(self._ingest.ack(messages))

    def _remember_decoded(self, ids: Sequence[int | None], records: Sequence[Record]) -> None:
        for spool_id, record in zip(ids, records, strict=True):
            if spool_id is not None and self._decoded_bytes < DECODED_CACHE_BYTES:  # a backlog: decode later
                self._decoded[spool_id] = record
                self._decoded_bytes += record.frame.values.nbytes

    def _status(self, topic: str, payload: bytes, now_us: int, retained: bool) -> None:
        try:
            self.registry.update_status(topic, payload, now_us, retained)
        except BadStatus as exc:
            self.metrics.frames_rejected.labels(cause="bad_status").inc()
            log.warning("status on %s: %s", topic, exc)

    def _reject(self, topic: str, payload: bytes, error: FrameError, now_us: int) -> None:
        assert self._rejects is not None
        self._rejects.reject(topic, payload, error)
        with contextlib.suppress(FrameError):
            node = parse_topic(topic)
            self.registry.frame_rejected(node.site, node.node, now_us)

    # -- storage ---------------------------------------------------------------------------------------------

    async def _open_storage(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.storage.open()
                self.health.set("storage", True, f"{self.storage.name} open")
                log.info("storage %s open", self.storage.name)
                return
            except StorageError as exc:
                if not exc.retryable:
                    raise
                self.health.set("storage", False, str(exc))
                delay = backoff.next()
                log.warning("storage %s not available (%s); retrying in %.1f s", self.storage.name, exc, delay)
                await asyncio.sleep(delay)

    async def _write_loop(self) -> None:
        await self._open_storage()
        try:
            while not self._stopping.is_set():  # checked, not only cancelled: a cancel can race a finishing wait
                try:
                    await self._fill_batch()
                    rows = await self._in_spool(self.spool.take, self.settings.gateway.batch_frames)
                    if rows:
                        await self._write(rows)
                except SpoolError as exc:  # the frames stay spooled; storage may have them twice (idempotent)
                    self.health.set("spool", False, str(exc))
                    log.error("%s; the writer retries in 1 s", exc)
                    await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await self.storage.close()

    async def _fill_batch(self) -> None:
        """Wait for a first frame; with fewer than a batch waiting, give ingest one more commit (at most
        ``flush_interval_s``) before writing. Waiting longer for full batches was measured to cost latency (p50
        98 -> 742 ms at 240 frames/s) and throughput (0.96 -> 0.88 of the baseline) on bench/gateway_load.py."""
        while not self.spool.pending and not self._stopping.is_set():
            self._spooled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._spooled.wait(), 1.0)
        if self.spool.pending < self.settings.gateway.batch_frames and not self._draining():
            self._spooled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._spooled.wait(), self.settings.gateway.flush_interval_s)

    def _draining(self) -> bool:
        return self._ingest is None or (not self._ingest.connected.is_set() and self.spool.pending > 0)

    async def _write(self, rows: list[Spooled]) -> None:
        assert self._writer is not None
        records: list[Record] = []
        decodable: list[Spooled] = []
        done_ids: list[int] = []
        for row in rows:
            try:
                cached = self._decoded.pop(row.id, None)
                if cached is not None:
                    self._decoded_bytes -= cached.frame.values.nbytes
                # validated at ingest already: the size limit is the configured one, whatever the default
                limit = max(self.settings.gateway.max_frame_bytes, len(row.payload))
                records.append(cached or Record.of(row.site, row.stream, decode_message(row.payload, limit)))
                decodable.append(row)
            except FrameError as exc:  # the spool's bytes no longer pass the frame checksum
                self.metrics.frames_rejected.labels(cause=SPOOL_CORRUPT).inc()
                self.dead_letters.add(row.topic, row.payload, SPOOL_CORRUPT, str(exc))
                self.registry.frame_rejected(row.site, row.node, time.time_ns() // 1000)
                done_ids.append(row.id)
        derived = await self._analyse(records)
        batch: list[Writable] = [*records, *derived]
        outcome = await self._writer.write(batch, self._stopping)
        if outcome.aborted:
            return  # shutting down: the frames stay spooled
        self.health.set("storage", True, f"{self.storage.name} writing")
        await self._in_spool(self.spool.done, [*done_ids, *(row.id for row in rows)])
        self.metrics.spool_depth.set(self.spool.pending)
        stored = [i for i in outcome.stored if i < len(records)]
        self._account([records[i] for i in stored], [decodable[i] for i in stored])

    async def _analyse(self, records: Sequence[Record]) -> list[Writable]:
        if self.analytics is None or not records:
            return []
        try:
            loop = asyncio.get_running_loop()
            return list(await loop.run_in_executor(self._analytics_thread, self.analytics.process, records))
        except Exception:  # a scoring bug must never stop frames reaching storage
            self.metrics.analytics_failures.inc()
            log.exception(
                "analytics failed on a batch of %d frames; frames are stored without outputs", len(records)
            )
            return []

    def _account(self, records: Sequence[Record], rows: Sequence[Spooled]) -> None:
        for record, row in zip(records, rows, strict=True):
            frame = record.frame
            last_sample_us = frame.t0_us + (frame.n_samples - 1) * frame.period_us
            self.metrics.node_last_seen.labels(record.site, record.node).set(row.received_us / 1e6)
            self.metrics.node_clock_offset.labels(record.site, record.node).set(
                (row.received_us - last_sample_us) / 1e6
            )
            self.registry.frame_stored(record.site, record.node, record.storable_values, row.received_us)
        self.metrics.frames_stored.inc(len(records))
        self.metrics.values_stored.inc(sum(r.storable_values for r in records))

    def _dead_letter_refused(self, record: Writable, cause: str, detail: str) -> None:
        if not isinstance(record, Record):
            log.error(
                "storage refused %d model output points for %s/%s: %s",
                len(record.points),
                record.node,
                record.stream,
                detail,
            )
            self.metrics.frames_rejected.labels(cause="output_rejected").inc()
            return
        topic = str(data_topic(record.site, record.node, record.stream))
        log.error("storage refused frame %s seq %d: %s", topic, record.frame.seq, detail)
        self.metrics.frames_rejected.labels(cause=cause).inc()
        self.registry.frame_rejected(record.site, record.node, time.time_ns() // 1000)
        evicted = self.dead_letters.add(topic, encode(record.frame), cause, detail)
        if evicted:
            self.metrics.dead_letters_dropped.inc(evicted)

    # -- housekeeping ----------------------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        last_prune = 0.0
        while True:
            self.health.heartbeat("housekeeping", stale_after_s=60)
            now = time.monotonic()
            if now - last_prune > 60:
                pruned = await self._in_spool(self.spool.prune)
                if pruned:
                    log.debug("forgot %d de-duplication keys", pruned)
                last_prune = now
            if self.analytics is not None:
                await asyncio.get_running_loop().run_in_executor(
                    self._analytics_thread, self.analytics.check_models
                )
            self.metrics.spool_depth.set(self.spool.pending)
            self.registry.flush()  # the file lags the gateway's own view by about a second (gateway/fleet.py)
            await asyncio.sleep(1.0)

    # -- operator views --------------------------------------------------------------------------------------

    async def _nodes_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.registry.entries(time.time_ns() // 1000)]

    async def _in_spool(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a spool call on the thread that owns the spool (SQLite commits wait on the disk)."""
        return await asyncio.get_running_loop().run_in_executor(self._spool_thread, fn, *args)

    @property
    def stored_frames(self) -> int:
        return int(self.metrics.value("edgegen_frames_stored_total"))

    @property
    def queued_frames(self) -> int:
        return self.spool.pending if self._spool is not None else 0


def _lock_state_dir(state_dir: Path) -> TextIO:
    """One daemon per state directory: a second would move the first one's live spool aside as damaged."""
    handle = (state_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(
            f"gateway.state_dir = {str(state_dir)!r}: another gateway process uses it; give each its own"
        ) from None
    return handle


async def _cancel(task: asyncio.Task[Any]) -> None:
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
