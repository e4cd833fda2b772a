"""The MQTT capture file: a binary, streaming, crash-tolerant record of what a subscriber received.

Layout (all integers big-endian; CRC-32 as in zlib)::

    file     = preamble header-json header-crc record*
    preamble = magic "\\x89EGCAP\\r\\n" (8 bytes) | version u16 (= 1) | header length u32
    header   = UTF-8 JSON object: format, version, broker, filters, protocol, retain_as_published, started_at
    header-crc = CRC-32 of version | header length | header JSON
    record   = body length u32 | CRC-32 of those 4 bytes | body | CRC-32 of body
    body     = t_us u64 | flags u8 (bits 0-1 QoS, bit 2 retain, others 0) | topic length u16 | topic | payload

``t_us`` is the arrival time on the recorder's monotonic clock, in microseconds after the first record.
The length has its own CRC so that a reader can tell a torn tail (the file ends inside a record whose length
is intact: a crash while writing) from damage (a length that fails its check: corruption). A torn tail, or a
tail of zero bytes (what a power cut can leave), is ignored and counted; damage anywhere else raises
:class:`CaptureCorrupt` naming the byte offset of the record.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from edgegen.simulators.errors import CaptureCorrupt, UnsupportedCaptureVersion

MAGIC = b"\x89EGCAP\r\n"  # the high byte and CR LF catch 7-bit and text-mode transfers, as PNG's does
VERSION = 1
FORMAT = "edgegen-mqtt-capture"
MAX_TOPIC_BYTES = 0xFFFF
MAX_HEADER_BYTES = 1 << 20
_PREAMBLE = struct.Struct(">8sHI")
_LENGTH = struct.Struct(">I")
_CRC = struct.Struct(">I")
_BODY_HEAD = struct.Struct(">QBH")
_RECORD_HEAD = _LENGTH.size + _CRC.size
_QOS_MASK = 0b011
_RETAIN = 0b100


@dataclass(frozen=True, slots=True)
class CaptureHeader:
    broker: str
    filters: tuple[str, ...]
    started_at: str  # ISO 8601 UTC wall clock when recording began (subscribed), not the first message
    protocol: str = "5"
    retain_as_published: bool = True  # False under MQTT 3.1.1: live messages then arrive with retain cleared

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "broker": self.broker,
            "filters": list(self.filters),
            "protocol": self.protocol,
            "retain_as_published": self.retain_as_published,
            "started_at": self.started_at,
        }


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    t_us: int
    topic: str
    qos: int
    retain: bool
    payload: bytes


@dataclass(frozen=True, slots=True)
class Capture:
    header: CaptureHeader
    records: list[CaptureRecord] = field(default_factory=list)
    torn_records: int = 0  # 1 when the file ends inside a record (ignored), else 0
    torn_bytes: int = 0


def encode_header(header: CaptureHeader) -> bytes:
    text = json.dumps(header.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    preamble = _PREAMBLE.pack(MAGIC, VERSION, len(text))
    return preamble + text + _CRC.pack(zlib.crc32(preamble[len(MAGIC) :] + text))


def encode_record(record: CaptureRecord) -> bytes:
    topic = record.topic.encode()
    if len(topic) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic of {len(topic)} bytes; at most {MAX_TOPIC_BYTES}")
    if not 0 <= record.qos <= 2:
        raise ValueError(f"QoS {record.qos}; expected 0, 1 or 2")
    flags = record.qos | (_RETAIN if record.retain else 0)
    body = _BODY_HEAD.pack(record.t_us, flags, len(topic)) + topic + record.payload
    length = _LENGTH.pack(len(body))
    return length + _CRC.pack(zlib.crc32(length)) + body + _CRC.pack(zlib.crc32(body))


class CaptureReader:
    """Reads the header on construction, then yields records; ``torn_*`` are final once iteration ends."""

    def __init__(self, stream: IO[bytes], name: str = "capture") -> None:
        self._stream = stream
        self.name = name
        self.offset = 0
        self.torn_records = 0
        self.torn_bytes = 0
        self.header = self._read_header()

    def _corrupt(self, offset: int, what: str) -> CaptureCorrupt:
        return CaptureCorrupt(f"{self.name}: {what} at byte offset {offset}", offset)

    def _read_header(self) -> CaptureHeader:
        preamble = self._stream.read(_PREAMBLE.size)
        if len(preamble) < _PREAMBLE.size or not preamble.startswith(MAGIC):
            raise self._corrupt(0, "not an edgegen MQTT capture (bad magic)")
        _, version, size = _PREAMBLE.unpack(preamble)
        if version != VERSION:
            raise UnsupportedCaptureVersion(f"{self.name}: capture format version {version}; this reads {VERSION}")
        if size > MAX_HEADER_BYTES:
            raise self._corrupt(len(MAGIC), f"header length {size} over {MAX_HEADER_BYTES}")
        rest = self._stream.read(size + _CRC.size)
        if len(rest) < size + _CRC.size:
            raise self._corrupt(_PREAMBLE.size, "file ends inside the header")
        text, (crc,) = rest[:size], _CRC.unpack(rest[size:])
        if zlib.crc32(preamble[len(MAGIC) :] + text) != crc:
            raise self._corrupt(_PREAMBLE.size, "header fails its CRC")
        try:
            obj = json.loads(text)
            header = CaptureHeader(
                broker=str(obj["broker"]),
                filters=tuple(str(f) for f in obj["filters"]),
                started_at=str(obj["started_at"]),
                protocol=str(obj.get("protocol", "5")),
                retain_as_published=bool(obj.get("retain_as_published", True)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise self._corrupt(_PREAMBLE.size, f"header is not the expected JSON ({exc})") from None
        self.offset = _PREAMBLE.size + size + _CRC.size
        return header

    def __iter__(self) -> Iterator[CaptureRecord]:
        while (record := self._next()) is not None:
            yield record

    def _next(self) -> CaptureRecord | None:
        start = self.offset
        head = self._stream.read(_RECORD_HEAD)
        if not head:
            return None
        if len(head) < _RECORD_HEAD:
            self._torn(head)
            return None
        length_bytes = head[: _LENGTH.size]
        if zlib.crc32(length_bytes) != _CRC.unpack(head[_LENGTH.size :])[0]:
            zeros = self._zero_tail(head)
            if zeros:
                self.torn_records, self.torn_bytes = 1, zeros
                return None
            raise self._corrupt(start, "record length fails its check")
        (length,) = _LENGTH.unpack(length_bytes)
        rest = self._stream.read(length + _CRC.size)
        if len(rest) < length + _CRC.size:
            self._torn(head + rest)
            return None
        body = rest[:length]
        if zlib.crc32(body) != _CRC.unpack(rest[length:])[0]:
            raise self._corrupt(start, "record body fails its CRC")
        self.offset = start + _RECORD_HEAD + len(rest)
        return self._parse(body, start)

    def _parse(self, body: bytes, start: int) -> CaptureRecord:
        if len(body) < _BODY_HEAD.size:
            raise self._corrupt(start, "record body shorter than its fixed fields")
        t_us, flags, topic_len = _BODY_HEAD.unpack_from(body)
        end = _BODY_HEAD.size + topic_len
        if end > len(body) or flags & ~(_QOS_MASK | _RETAIN) or flags & _QOS_MASK == 3:
            raise self._corrupt(start, "record fields out of range")
        try:
            topic = body[_BODY_HEAD.size : end].decode()
        except UnicodeDecodeError:
            raise self._corrupt(start, "record topic is not UTF-8") from None
        return CaptureRecord(t_us, topic, flags & _QOS_MASK, bool(flags & _RETAIN), body[end:])

    def _zero_tail(self, head: bytes) -> int:
        """How many zero bytes run from ``head`` to the end of the file; 0 if anything else follows."""
        if head.count(0) != len(head):
            return 0
        zeros = len(head)
        while chunk := self._stream.read(1 << 16):
            if chunk.count(0) != len(chunk):
                return 0
            zeros += len(chunk)
        return zeros

    def _torn(self, read: bytes) -> None:
        self.torn_records = 1
        self.torn_bytes = len(read) + len(self._stream.read())


class CaptureWriter:
    """Appends records to a new capture file, flushed to the OS per record: a crash loses at most that one."""

    def __init__(self, path: Path, header: CaptureHeader, *, overwrite: bool = False) -> None:
        self.path = path
        self._file = path.open("wb" if overwrite else "xb")
        self.bytes_written = 0
        self.records = 0
        self._write(encode_header(header))

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()  # no fsync per record: it would cap the rate at the disk's; close() syncs
        self.bytes_written += len(data)

    def write(self, record: CaptureRecord) -> None:
        self._write(encode_record(record))
        self.records += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_capture(path: Path) -> Capture:
    """The whole capture in memory: its header, every intact record, and whether a torn tail was ignored."""
    with path.open("rb") as stream:
        reader = CaptureReader(stream, str(path))
        records = list(reader)
        return Capture(reader.header, records, reader.torn_records, reader.torn_bytes)
