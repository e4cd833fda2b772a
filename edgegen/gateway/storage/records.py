"""What the gateway stores: accepted frames, flattened into points (docs/storage.md).

One point per sample instant: measurement ``samples`` (or ``embeddings``), tags site / node / stream, one field per
channel (``c0``, ``c1``, ... or ``e0``, ...), and the timestamp the node gave that sample. Non-finite values cannot
be stored in InfluxDB; they are left out of their point and counted, never silently lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgegen.gateway.protocol import Frame, MessageType

MEASUREMENTS = {MessageType.SAMPLES: ("samples", "c"), MessageType.EMBEDDING: ("embeddings", "e")}


@dataclass(frozen=True, slots=True)
class Record:
    """An accepted frame with the topic's context: what a storage backend writes."""

    site: str
    stream: str
    frame: Frame
    nonfinite: int = 0  # NaN/Inf values in the frame, left out when stored

    @classmethod
    def of(cls, site: str, stream: str, frame: Frame) -> Record:
        return cls(site, stream, frame, int(np.count_nonzero(~np.isfinite(frame.physical()))))

    @property
    def storable_values(self) -> int:
        return self.frame.n_samples * self.frame.n_channels - self.nonfinite

    @property
    def node(self) -> str:
        return self.frame.node_id

    @property
    def measurement(self) -> str:
        return MEASUREMENTS[self.frame.msg_type][0]


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: tuple[tuple[str, str], ...]  # sorted by key, as InfluxDB prefers
    fields: tuple[tuple[str, float], ...]
    ts_us: int


@dataclass(frozen=True, slots=True)
class Derived:
    """Points the gateway computed from a stream (scores, forecasts, decoded windows): stored beside its samples,
    tagged with the model and version that made them so two versions never overwrite each other."""

    site: str
    node: str
    stream: str
    points: tuple[Point, ...]

    @property
    def storable_values(self) -> int:
        return sum(len(p.fields) for p in self.points)


Writable = Record | Derived  # what a storage backend takes


def field_names(record: Record) -> list[str]:
    prefix = MEASUREMENTS[record.frame.msg_type][1]
    return [f"{prefix}{c}" for c in range(record.frame.n_channels)]


def points(record: Writable) -> Iterator[Point]:
    """The record's points; a sample whose channels are all non-finite yields no point at all."""
    if isinstance(record, Derived):
        yield from record.points
        return
    tags = (("node", record.node), ("site", record.site), ("stream", record.stream))
    names = field_names(record)
    values = record.frame.physical().tolist()
    for ts_us, row in zip(record.frame.timestamps_us().tolist(), values, strict=True):
        fields = tuple((name, v) for name, v in zip(names, row, strict=True) if math.isfinite(v))
        if fields:
            yield Point(record.measurement, tags, fields, ts_us)
