"""The storage writer: how a batch of records gets into storage under every answer it can get (R7).

The daemon reads batches from its durable spool, calls :meth:`StorageWriter.write`, and deletes from the spool only
the records the returned :class:`WriteOutcome` reports stored or dead-lettered. Everything else stays spooled, so
giving up (``stop`` set) or failing fast (:class:`~gateway.storage.errors.StorageNotFound`) loses nothing.

Policy, by answer (InfluxDB's HTTP status; backends without HTTP map onto the same errors):

- 2xx: stored.
- 400/422: some lines were refused. Records whose lines the body names (``unable to parse '<line>'``) are
  dead-lettered and the rest re-sent; when the body names none (a field type conflict), the batch is bisected until
  the refused records stand alone. Re-sending is safe: a point is identified by measurement, tags and timestamp, so
  rewriting the points InfluxDB already took changes nothing. A record is dead-lettered if any of its lines is.
- 401/403: the credentials are wrong, not the data: keep the batch, alert once, flag :attr:`auth_failing` for the
  health endpoint, and retry with a backoff capped at a long interval until they are fixed.
- 404: the database or bucket is missing, a configuration error: raise :class:`StorageNotFound` (fatal).
- 413: bisect the batch; a single record is split by its lines; a single line still too large is dead-lettered.
- 429/503: wait max(Retry-After, jittered backoff), then retry.
- other 5xx, refused connections, timeouts: jittered backoff (full jitter), then retry.
- any other 4xx (405, 409, ...): a proxy or configuration problem the writer cannot fix: the error is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from edgegen.gateway.backoff import Backoff
from edgegen.gateway.storage.base import LineWriter, Storage
from edgegen.gateway.storage.errors import (
    LineProtocolError,
    StorageError,
    StorageNotFound,
    StorageRejected,
    StorageUnavailable,
)
from edgegen.gateway.storage.http_status import unparsed_lines
from edgegen.gateway.storage.lineprotocol import record_lines
from edgegen.gateway.storage.records import Derived, Record, Writable

log = logging.getLogger(__name__)

CAUSE_REFUSED = "storage_rejected"  # the server refused the record's points (docs/protocol.md)
CAUSE_TOO_LARGE = "storage_too_large"  # one line exceeds the server's request size limit
CAUSE_UNENCODABLE = "storage_unencodable"  # the record cannot be written as line protocol at all

DeadLetterSink = Callable[[Writable, str, str], None]
"""Called with (record, cause, detail) for each record the writer gives up on, before :meth:`write` returns."""

AlertSink = Callable[[str], None]
"""Called with a message when storage starts refusing the gateway's credentials."""


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """A record of the batch that storage refused for good, and why."""

    index: int  # position in the batch given to write()
    record: Writable
    cause: str
    detail: str


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What one :meth:`StorageWriter.write` call achieved; positions refer to the batch it was given.

    ``stored`` and ``dead_lettered`` are settled: the caller may delete them from its spool. Anything else
    (:attr:`unsettled`) was not stored, because ``stop`` was set (``aborted``), and must stay spooled.
    """

    batch_size: int
    stored: tuple[int, ...]  # ascending positions of records storage took in full
    dead_lettered: tuple[DeadLettered, ...]  # ascending by position
    values_stored: int  # field values of the stored records
    attempts: int  # storage.write calls made (one HTTP request per 5000 lines for InfluxDB)
    aborted: bool

    @property
    def records_stored(self) -> int:
        return len(self.stored)

    @property
    def settled(self) -> frozenset[int]:
        """Positions the caller may drop from its spool: stored or dead-lettered."""
        return frozenset(self.stored) | {d.index for d in self.dead_lettered}

    @property
    def unsettled(self) -> tuple[int, ...]:
        """Positions neither stored nor dead-lettered (only when aborted): keep them spooled."""
        settled = self.settled
        return tuple(i for i in range(self.batch_size) if i not in settled)


class WriterMetrics:
    """The writer's Prometheus metrics, registered in the registry it is given (no module-level state)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.attempts = Counter(
            "edgegen_writer_attempts",
            "Storage write attempts, by outcome and HTTP status class",
            ["outcome", "status_class"],
            registry=r,
        )
        self.retries = Counter(
            "edgegen_writer_retries", "Waits before re-sending a batch, by reason", ["reason"], registry=r
        )
        self.splits = Counter(
            "edgegen_writer_splits", "Batches or records split in two, by reason", ["reason"], registry=r
        )
        self.write_seconds = Histogram(
            "edgegen_writer_write_seconds", "Duration of storage write attempts that got an answer", registry=r
        )
        self.dead_lettered = Counter(
            "edgegen_writer_dead_lettered", "Records the writer dead-lettered, by cause", ["cause"], registry=r
        )
        self.auth_failing = Gauge(
            "edgegen_writer_auth_failing",
            "1 while storage refuses the gateway's credentials (HTTP 401/403)",
            registry=r,
        )


class _Action(enum.Enum):
    REFUSED = "refused"
    TOO_LARGE = "too_large"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    OTHER = "rejected"


def _action(exc: StorageRejected) -> _Action:
    """Dispatch on the status, so any backend that reports one gets the same policy."""
    status = exc.status
    if isinstance(exc, StorageNotFound) or status == 404:
        return _Action.NOT_FOUND
    if status in (401, 403):
        return _Action.UNAUTHORIZED
    if status == 413:
        return _Action.TOO_LARGE
    if status in (400, 422) or status is None:  # None: a backend without HTTP (SQLite) refused the data
        return _Action.REFUSED
    return _Action.OTHER


def _status_class(status: int | None) -> str:
    return "none" if status is None else f"{status // 100}xx"


class _Aborted(Exception):
    """``stop`` was set while a request was in flight."""


@dataclass(frozen=True, slots=True)
class _Part:
    """A record of the batch, or a piece of one split to pass a size limit, with its encoded lines."""

    index: int
    item: Writable
    lines: tuple[str, ...]
    values: int


def _part(index: int, item: Writable) -> _Part:
    lines, values = record_lines(item)
    return _Part(index, item, tuple(lines), values)


def _halves(part: _Part) -> tuple[_Part, _Part] | None:
    """The part split into two with about half its lines each, or None for a single line."""
    if len(part.lines) < 2:
        return None
    item = part.item
    if isinstance(item, Derived):
        cut = len(item.points) // 2
        first: Writable = dataclasses.replace(item, points=item.points[:cut])
        second: Writable = dataclasses.replace(item, points=item.points[cut:])
    else:
        frame = item.frame
        with_line = np.flatnonzero(np.isfinite(frame.physical()).any(axis=1))  # samples that yield a point
        cut = int(with_line[len(with_line) // 2])
        first = _subrecord(item, 0, cut)
        second = _subrecord(item, cut, frame.n_samples)
    return _part(part.index, first), _part(part.index, second)


def _subrecord(record: Record, start: int, stop: int) -> Record:
    frame = record.frame
    sub = dataclasses.replace(frame, t0_us=frame.t0_us + start * frame.period_us, values=frame.values[start:stop])
    return Record.of(record.site, record.stream, sub)


@dataclass
class _Call:
    """The state of one write() call."""

    batch: Sequence[Writable]
    stop: asyncio.Event
    backoff: Backoff
    auth_backoff: Backoff
    attempts: int = 0
    aborted: bool = False
    pieces: dict[int, int] = field(default_factory=dict)  # index -> parts it is split into
    done: dict[int, int] = field(default_factory=dict)  # index -> parts stored
    values: dict[int, int] = field(default_factory=dict)  # index -> values of the parts stored
    stored: set[int] = field(default_factory=set)
    dead: dict[int, DeadLettered] = field(default_factory=dict)

    def part_stored(self, part: _Part) -> None:
        i = part.index
        self.done[i] = self.done.get(i, 0) + 1
        self.values[i] = self.values.get(i, 0) + part.values
        if self.done[i] == self.pieces.get(i, 1) and i not in self.dead:
            self.stored.add(i)

    def outcome(self) -> WriteOutcome:
        stored = tuple(sorted(self.stored))
        return WriteOutcome(
            batch_size=len(self.batch),
            stored=stored,
            dead_lettered=tuple(self.dead[i] for i in sorted(self.dead)),
            values_stored=sum(self.values[i] for i in stored),
            attempts=self.attempts,
            aborted=self.aborted,
        )


class StorageWriter:
    """Writes batches to a :class:`~gateway.storage.base.Storage` under the R7 policy (see the module docstring).

    Metrics and dead letters go to the callables and registry it is given, so the daemon, the tests and the
    health endpoint can each plug in their own. One writer serves one daemon: ``auth_failing`` spans calls.
    """

    def __init__(
        self,
        storage: Storage,
        on_dead_letter: DeadLetterSink,
        on_alert: AlertSink | None = None,
        registry: CollectorRegistry | None = None,
        *,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 30.0,
        auth_retry_cap_s: float = 300.0,
        retry_after_cap_s: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        self.storage = storage
        self.on_dead_letter = on_dead_letter
        self.on_alert = on_alert
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = WriterMetrics(self.registry)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.auth_retry_cap_s = auth_retry_cap_s
        self.retry_after_cap_s = retry_after_cap_s  # a bogus Retry-After must not park the writer for days
        self._rng = rng or random.Random()
        self._auth_error: str | None = None

    @property
    def auth_failing(self) -> bool:
        """True from a 401/403 until storage next accepts a write: for the health endpoint."""
        return self._auth_error is not None

    @property
    def auth_error(self) -> str | None:
        """The last credentials refusal while :attr:`auth_failing`."""
        return self._auth_error

    async def write(self, records: Sequence[Writable], stop: asyncio.Event) -> WriteOutcome:
        """Write ``records``; return once each is stored or dead-lettered, or ``stop`` is set (``aborted``).

        Retries unavailability and credentials refusals for as long as it takes; ``stop`` interrupts waits and
        requests in flight at once (a ``stop`` already set means no request is made). Raises
        :class:`StorageNotFound` on 404 and :class:`StorageRejected` on an unexpected 4xx: both non-retryable,
        both leaving the unsettled records to the caller's spool.
        """
        call = _Call(
            records,
            stop,
            Backoff(self.backoff_base_s, self.backoff_cap_s, self._rng),
            Backoff(self.backoff_base_s, self.auth_retry_cap_s, self._rng),
        )
        parts: list[_Part] = []
        for index, record in enumerate(records):
            try:
                parts.append(_part(index, record))
            except LineProtocolError as exc:
                self._dead_letter(call, index, record, CAUSE_UNENCODABLE, str(exc))
        await self._settle(call, parts)
        return call.outcome()

    # -- the policy ---------------------------------------------------------------------------------------

    async def _settle(self, call: _Call, parts: list[_Part]) -> None:
        """Store or dead-letter every part, retrying as the answers say; stop early only when aborted."""
        parts = [p for p in parts if p.index not in call.dead]
        for part in [p for p in parts if not p.lines]:  # only non-finite values: nothing to send
            call.part_stored(part)
        parts = [p for p in parts if p.lines]
        while parts:
            if call.stop.is_set():
                call.aborted = True
                return
            try:
                await self._attempt(call, parts)
            except _Aborted:
                call.aborted = True
                return
            except StorageUnavailable as exc:
                throttled = exc.retry_after_s is not None or exc.status in (429, 503)
                delay = call.backoff.next()
                if exc.retry_after_s is not None:
                    delay = max(min(exc.retry_after_s, self.retry_after_cap_s), delay)
                await self._retry_after(call, delay, "throttled" if throttled else "unavailable", parts, exc)
                continue
            except StorageRejected as exc:
                if await self._rejected(call, parts, exc):
                    continue
                return
            except LineProtocolError as exc:  # the backend encodes differently from us: isolate the culprit
                await self._split(call, parts, exc, CAUSE_UNENCODABLE)
                return
            call.backoff.reset()
            call.auth_backoff.reset()
            self._auth_accepted()
            for part in parts:
                call.part_stored(part)
            return

    async def _rejected(self, call: _Call, parts: list[_Part], exc: StorageRejected) -> bool:
        """Act on a refusal; True when the same parts should be sent again (after waiting)."""
        action = _action(exc)
        if action is _Action.UNAUTHORIZED:
            self._auth_refused(exc, parts)
            await self._retry_after(call, call.auth_backoff.next(), "unauthorized", parts, exc)
            return True
        if action is _Action.NOT_FOUND:
            raise StorageNotFound(str(exc), exc.status, exc.body) from exc
        if action is _Action.OTHER:
            raise exc
        if action is _Action.REFUSED:
            await self._refused(call, parts, exc)
        else:
            await self._split(call, parts, exc, CAUSE_TOO_LARGE)
        return False

    async def _attempt(self, call: _Call, parts: list[_Part]) -> None:
        """One storage.write of ``parts``, abandoned (raising :class:`_Aborted`) as soon as ``stop`` is set."""
        call.attempts += 1
        started = time.perf_counter()
        storage = self.storage
        write: asyncio.Future[object]
        if isinstance(storage, LineWriter):  # the lines are encoded already: do not encode twice
            write = asyncio.ensure_future(storage.write_lines([text for p in parts for text in p.lines]))
        else:
            write = asyncio.ensure_future(storage.write([p.item for p in parts]))
        stopped = asyncio.ensure_future(call.stop.wait())
        try:
            await asyncio.wait({write, stopped}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside: take the request down with us
            write.cancel()
            stopped.cancel()
            raise
        stopped.cancel()
        if not write.done():
            write.cancel()
            await asyncio.wait({write})
            self.metrics.attempts.labels(outcome="aborted", status_class="none").inc()
            raise _Aborted
        self.metrics.write_seconds.observe(time.perf_counter() - started)
        try:
            write.result()
        except StorageError as exc:
            status: int | None = getattr(exc, "status", None)
            self.metrics.attempts.labels(outcome=_outcome(exc), status_class=_status_class(status)).inc()
            raise
        self.metrics.attempts.labels(outcome="stored", status_class="2xx").inc()

    async def _retry_after(
        self, call: _Call, delay: float, reason: str, parts: list[_Part], exc: StorageError
    ) -> None:
        """Wait ``delay`` before the next attempt, or until ``stop`` is set (the loop then aborts)."""
        self.metrics.retries.labels(reason=reason).inc()
        log.warning("storage %s (%s); retrying %d records in %.2f s", reason, exc, len(parts), delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.stop.wait(), delay)

    async def _refused(self, call: _Call, parts: list[_Part], exc: StorageRejected) -> None:
        """400/422: dead-letter the records whose lines the body names and re-send the rest; else bisect."""
        by_line = {text: part for part in parts for text in part.lines}
        named = unparsed_lines(exc.body, by_line)
        if not named:
            await self._split(call, parts, exc, CAUSE_REFUSED)
            return
        for text, reason in named.items():
            part = by_line[text]
            detail = f"HTTP {exc.status}: unable to parse '{text}': {reason}"
            self._dead_letter(call, part.index, _original(call, part), CAUSE_REFUSED, detail)
        # Re-send the rest: a 1.x server wrote it already (rewriting is harmless), but the backend may have sent
        # the batch as several requests and stopped at the refused one, and other servers refuse whole requests.
        await self._settle(call, parts)

    async def _split(self, call: _Call, parts: list[_Part], exc: StorageError, cause: str) -> None:
        """Bisect ``parts``; a single record is dead-lettered, or halved by lines when it is too large."""
        if len(parts) > 1:
            self.metrics.splits.labels(reason=cause).inc()
            mid = len(parts) // 2
            await self._settle(call, parts[:mid])
            if not call.aborted:
                await self._settle(call, parts[mid:])
            return
        [part] = parts
        halves = _halves(part) if cause == CAUSE_TOO_LARGE else None
        if halves is None:
            self._dead_letter(call, part.index, _original(call, part), cause, str(exc))
            return
        self.metrics.splits.labels(reason=cause).inc()
        call.pieces[part.index] = call.pieces.get(part.index, 1) + 1
        await self._settle(call, [halves[0]])
        if not call.aborted:
            await self._settle(call, [halves[1]])

    # -- side effects ---------------------------------------------------------------------------------------

    def _dead_letter(self, call: _Call, index: int, record: Writable, cause: str, detail: str) -> None:
        if index in call.dead:
            return
        call.dead[index] = DeadLettered(index, record, cause, detail)
        self.metrics.dead_lettered.labels(cause=cause).inc()
        log.error("storage refused record %d (%s): %s", index, cause, detail)
        self.on_dead_letter(record, cause, detail)

    def _auth_refused(self, exc: StorageRejected, parts: list[_Part]) -> None:
        first = self._auth_error is None
        self._auth_error = str(exc)
        self.metrics.auth_failing.set(1)
        if first:
            message = f"storage refuses the gateway's credentials ({exc}); keeping {len(parts)} records, retrying"
            log.error("%s", message)
            if self.on_alert is not None:
                self.on_alert(message)

    def _auth_accepted(self) -> None:
        if self._auth_error is not None:
            log.warning("storage accepts the gateway's credentials again")
            self._auth_error = None
            self.metrics.auth_failing.set(0)


def _outcome(exc: StorageError) -> str:
    if isinstance(exc, StorageUnavailable):
        return "throttled" if exc.retry_after_s is not None or exc.status in (429, 503) else "unavailable"
    if isinstance(exc, StorageRejected):
        return _action(exc).value
    if isinstance(exc, LineProtocolError):
        return "unencodable"
    return "error"


def _original(call: _Call, part: _Part) -> Writable:
    """The batch's record for ``part`` (a piece of a split record is dead-lettered as the whole record)."""
    return call.batch[part.index]
