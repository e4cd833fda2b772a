"""Synthetic series in storage: ``edgegen generate`` stores through the gateway's backends and storage writer.

A :class:`~edgegen.models.synthetic_out.SyntheticBatch` becomes model-output points (``Derived`` records), one
point per series and step, with the schema of docs/storage.md::

  synthetic,failure_mode=<mode>,generator=<version>,model=<model>,series=<id>,synthetic=true <channel>=<v>,... <µs>

The :class:`~edgegen.gateway.writer.StorageWriter` writes them under the gateway's policy (R7): requests of 5,000
lines, batches split on 413, refused records dead-lettered and the rest stored, retries with backoff. So
``generate`` reaches every backend the gateway does (SQLite, InfluxDB 1.x, 2.x/3.x) by the same code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from edgegen.gateway.storage import lineprotocol
from edgegen.gateway.storage.base import Storage
from edgegen.gateway.storage.errors import LineProtocolError
from edgegen.gateway.storage.records import Derived, Point, Writable
from edgegen.gateway.writer import StorageWriter
from edgegen.models.synthetic_out import SyntheticBatch

MEASUREMENT = "synthetic"
TAG_KEYS = ("failure_mode", "generator", "model", "series", "synthetic")  # sorted, as InfluxDB prefers
# Field keys InfluxDB refuses ("time") or that would read ambiguously beside a tag of the same name.
RESERVED_FIELD_KEYS = frozenset({"time", *TAG_KEYS})
# Steps of one series per record, the unit the writer dead-letters (as a frame is for a node's samples). Smaller
# records lose fewer points to one refused point; larger ones need fewer requests to bisect a batch that storage
# refuses without naming a line (about two requests per record when it refuses everything).
STEPS_PER_RECORD = 100


def synthetic_records(
    batch: SyntheticBatch, measurement: str = MEASUREMENT, steps_per_record: int = STEPS_PER_RECORD
) -> list[Derived]:
    """The batch as records of at most ``steps_per_record`` consecutive steps of one series, series by series.

    Raises :class:`LineProtocolError` for anything no backend can store as the schema says: a channel named like
    a reserved key, a name line protocol cannot carry (the gateway's rules), a non-finite value. Nothing is
    written in part: the caller gets the error before any request.
    """
    if steps_per_record < 1:
        raise ValueError(f"steps_per_record must be positive, got {steps_per_record}")
    clash = RESERVED_FIELD_KEYS.intersection(batch.channels)
    if clash:
        raise LineProtocolError(f"channel names {sorted(clash)} clash with InfluxDB's time or the label tags")
    nonfinite = int(np.count_nonzero(~np.isfinite(batch.values)))
    if nonfinite:
        raise LineProtocolError(f"{nonfinite} non-finite values: InfluxDB cannot store NaN or infinity")
    lineprotocol.measurement(measurement)  # the encoder the writer uses, which would dead-letter, not raise
    for channel in batch.channels:
        lineprotocol.key(channel, "field key")
    stamps = batch.timestamps_us().tolist()
    records: list[Derived] = []
    for series_id, rows in zip(batch.series_ids(), batch.values.tolist(), strict=True):
        labels = (batch.failure_mode, batch.generator_version, batch.model_name, series_id, "true")
        tags = tuple(zip(TAG_KEYS, labels, strict=True))
        for key, value in tags:
            lineprotocol.key(value, f"{key} tag")
        points = [
            Point(measurement, tags, tuple(zip(batch.channels, row, strict=True)), ts)
            for ts, row in zip(stamps, rows, strict=True)
        ]
        # Derived names the stream its points come from; a synthetic series has none: its labels stand in.
        records += [
            Derived(batch.model_name, series_id, batch.failure_mode, tuple(points[i : i + steps_per_record]))
            for i in range(0, len(points), steps_per_record)
        ]
    return records


@dataclass(frozen=True, slots=True)
class RefusedRecord:
    """Consecutive points of one series that storage refused for good."""

    series: str
    first_us: int  # timestamp of its first step
    points: int
    cause: str  # the writer's cause: storage_rejected, storage_too_large
    detail: str  # the server's answer


@dataclass(frozen=True, slots=True)
class SyntheticStored:
    """What :func:`store_synthetic` achieved, in points (one per series and step)."""

    points_stored: int
    refused: tuple[RefusedRecord, ...]  # dead-lettered by the writer
    points_unwritten: int  # neither stored nor refused: storing gave up, for the reason in ``gave_up``
    gave_up: str | None
    requests: int  # storage write attempts (one InfluxDB request per 5,000 lines)

    @property
    def points_refused(self) -> int:
        return sum(r.points for r in self.refused)


async def store_synthetic(
    batch: SyntheticBatch,
    storage: Storage,
    *,
    deadline_s: float,
    measurement: str = MEASUREMENT,
    steps_per_record: int = STEPS_PER_RECORD,
) -> SyntheticStored:
    """Open ``storage``, write the batch through a :class:`StorageWriter`, close it.

    Bounded: every request by the backend's timeout (``storage.timeout_s``), retries of an unavailable server by
    ``deadline_s``. A refusal of the credentials ends the write at once: the gateway waits for an operator to fix
    them, a one-off command cannot. Names that cannot be stored raise :class:`LineProtocolError` before storage
    is opened; storage that cannot be opened, a missing database (404) or another unexpected 4xx raise their
    :class:`~edgegen.gateway.storage.errors.StorageError`.
    """
    records = synthetic_records(batch, measurement, steps_per_record)
    stop = asyncio.Event()
    writer = StorageWriter(storage, on_dead_letter=_reported_in_outcome, on_alert=lambda _: stop.set())
    timer = asyncio.get_running_loop().call_later(deadline_s, stop.set)
    try:
        await storage.open()
        try:
            outcome = await writer.write(records, stop)
        finally:
            await storage.close()
    finally:
        timer.cancel()
    gave_up = None
    if outcome.aborted:
        gave_up = (
            f"storage refuses the credentials: {writer.auth_error}"
            if writer.auth_failing
            else f"storage did not take every point within {deadline_s:g} s"
        )
    return SyntheticStored(
        points_stored=sum(len(records[i].points) for i in outcome.stored),
        refused=tuple(_refused(records[d.index], d.cause, d.detail) for d in outcome.dead_lettered),
        points_unwritten=sum(len(records[i].points) for i in outcome.unsettled),
        gave_up=gave_up,
        requests=outcome.attempts,
    )


def _refused(record: Derived, cause: str, detail: str) -> RefusedRecord:
    first = record.points[0]
    return RefusedRecord(dict(first.tags)["series"], first.ts_us, len(record.points), cause, detail)


def _reported_in_outcome(record: Writable, cause: str, detail: str) -> None:
    """The writer logs each dead letter; :class:`SyntheticStored` reports them. Unlike a node's frame, a refused
    synthetic record is not kept: the same model, mode and seed generate it again."""
