"""Protocol v1 data frames: the value object and the reference binary codec.

The layout is specified in docs/protocol.md; ``firmware_py.frame`` is the MicroPython encoder of the same bytes,
and tests/golden/frames_v1.json holds vectors both must produce and parse identically.

Decoding checks run in a fixed order so that each malformed input maps to exactly one cause: size limit, magic,
version, header, declared length, actual length, checksum, then field values. Nothing past the header is read
before the declared length has been checked against the limit.
"""

from __future__ import annotations

import enum
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from edgegen.gateway.protocol.errors import (
    BadChecksum,
    BadMagic,
    DeclaredLengthTooLarge,
    FrameTooLarge,
    InvalidField,
    LengthMismatch,
    Truncated,
    UnsupportedVersion,
)
from edgegen.gateway.protocol.topics import IDENTIFIER_PATTERN

MAGIC = b"EG"
VERSION = 1
# magic, version, message type, flags, encoding, channels, node id length, seq, t0_us, period_us, samples,
# payload length. Little-endian: every MicroPython port is little-endian, so nodes copy samples unchanged.
HEADER = struct.Struct("<2sBBBBBBIqIHI")
CRC = struct.Struct("<I")
INT8_PARAMS = struct.Struct("<fb")
SCALE = struct.Struct("<f")

MAX_SEQ = 0xFFFF_FFFF
MAX_PERIOD_US = 0xFFFF_FFFF
MAX_SAMPLES = 0xFFFF
MAX_CHANNELS = 0xFF
DEFAULT_MAX_FRAME_BYTES = 1 << 20


class MessageType(enum.IntEnum):
    SAMPLES = 1  # sensor samples, one row per sample instant
    EMBEDDING = 2  # int8 vectors from the node half of a partitioned model, one row per window


class Encoding(enum.IntEnum):
    INT16 = 1  # value = raw * scale[channel]
    INT8 = 2  # value = (raw - zero_point) * scale, one scale for the tensor
    FLOAT32 = 3  # value = raw

    @property
    def dtype(self) -> np.dtype[Any]:
        return _DTYPES[self]

    @property
    def label(self) -> str:
        return self.name.lower()


_DTYPES: dict[Encoding, np.dtype[Any]] = {
    Encoding.INT16: np.dtype("<i2"),
    Encoding.INT8: np.dtype("i1"),
    Encoding.FLOAT32: np.dtype("<f4"),
}


class Flag(enum.IntFlag):
    EVENT = 0x01  # the node sent this raw window because its on-node anomaly pre-score fired


KNOWN_FLAGS = int(Flag.EVENT)


def _as_float32(value: float, what: str) -> float:
    """Round ``value`` to the float32 the wire carries; reject what could never decode to a sample value."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidField(f"{what} must be a number, got {type(value).__name__}")
    rounded = float(np.float32(value))
    if not math.isfinite(rounded) or rounded == 0.0:
        raise InvalidField(f"{what} must be finite and non-zero as float32, got {value!r}")
    return rounded


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded frame: ``values`` holds the raw integers (or floats) as sent, shape (samples, channels)."""

    node_id: str
    seq: int
    t0_us: int
    period_us: int
    encoding: Encoding
    values: npt.NDArray[Any]
    scales: tuple[float, ...] = ()
    zero_point: int = 0
    msg_type: MessageType = MessageType.SAMPLES
    flags: int = 0
    _n: tuple[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not IDENTIFIER_PATTERN.fullmatch(self.node_id):
            raise InvalidField(f"node id {self.node_id!r} must match {IDENTIFIER_PATTERN.pattern}")
        _check_int("seq", self.seq, 0, MAX_SEQ)
        _check_int("t0_us", self.t0_us, -(1 << 63), (1 << 63) - 1)
        _check_int("period_us", self.period_us, 1, MAX_PERIOD_US)
        _check_int("flags", self.flags, 0, KNOWN_FLAGS)
        values = np.asarray(self.values)
        if values.ndim != 2:
            raise InvalidField(f"values must be 2-D (samples, channels), got shape {values.shape}")
        n_samples, n_channels = values.shape
        _check_int("samples", n_samples, 1, MAX_SAMPLES)
        _check_int("channels", n_channels, 1, MAX_CHANNELS)
        if values.dtype != self.encoding.dtype:
            values = _cast_exact(values, self.encoding)
        elif values.flags.writeable:
            values = values.copy()  # a frame is a value: never alias (or freeze) the caller's array
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_n", (n_samples, n_channels))
        object.__setattr__(self, "scales", self._checked_scales(n_channels))
        if self.encoding is Encoding.INT8:
            _check_int("zero_point", self.zero_point, -128, 127)
        elif self.zero_point != 0:
            raise InvalidField(f"zero_point applies to int8 frames only, got {self.zero_point}")

    def _checked_scales(self, n_channels: int) -> tuple[float, ...]:
        expected = {Encoding.INT16: n_channels, Encoding.INT8: 1, Encoding.FLOAT32: 0}[self.encoding]
        if len(self.scales) != expected:
            raise InvalidField(f"{self.encoding.label} frames carry {expected} scale(s), got {len(self.scales)}")
        return tuple(_as_float32(s, f"scale[{i}]") for i, s in enumerate(self.scales))

    @property
    def n_samples(self) -> int:
        return self._n[0]

    @property
    def n_channels(self) -> int:
        return self._n[1]

    def timestamps_us(self) -> npt.NDArray[np.int64]:
        """Each sample's timestamp: the node's first-sample time plus whole periods."""
        return self.t0_us + np.arange(self.n_samples, dtype=np.int64) * self.period_us

    def physical(self) -> npt.NDArray[np.float64]:
        """Values in physical units, shape (samples, channels); exact (float32 scale times int fits a double)."""
        raw = self.values.astype(np.float64)
        if self.encoding is Encoding.INT16:
            return raw * np.asarray(self.scales, dtype=np.float64)
        if self.encoding is Encoding.INT8:
            return (raw - self.zero_point) * self.scales[0]
        return raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (
            self.node_id == other.node_id
            and self.seq == other.seq
            and self.t0_us == other.t0_us
            and self.period_us == other.period_us
            and self.encoding is other.encoding
            and self.scales == other.scales
            and self.zero_point == other.zero_point
            and self.msg_type is other.msg_type
            and self.flags == other.flags
            and self.values.shape == other.values.shape
            and self.values.tobytes() == other.values.tobytes()
        )

    __hash__ = None  # type: ignore[assignment]


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise InvalidField(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidField(f"{name} must be in [{low}, {high}], got {value}")


def _cast_exact(values: npt.NDArray[Any], encoding: Encoding) -> npt.NDArray[Any]:
    """Cast to the wire dtype, refusing anything that would change a value (overflow, fractions)."""
    target = encoding.dtype
    if encoding is Encoding.FLOAT32:
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise InvalidField(f"float32 values must be real numbers, got dtype {values.dtype}")
        with np.errstate(over="ignore"):  # overflow is detected just below, as a typed error
            cast = values.astype(target)
        if np.any(np.isfinite(values) & ~np.isfinite(cast)):
            raise InvalidField("float32 values must lie within the float32 range")
        return cast
    if not np.issubdtype(values.dtype, np.integer):
        raise InvalidField(f"{encoding.label} values must be integers, got dtype {values.dtype}")
    info = np.iinfo(target)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise InvalidField(f"{encoding.label} values must lie in [{info.min}, {info.max}]")
    return values.astype(target)


def _params_size(encoding: Encoding, n_channels: int) -> int:
    if encoding is Encoding.INT16:
        return SCALE.size * n_channels
    if encoding is Encoding.INT8:
        return INT8_PARAMS.size
    return 0


def encode(frame: Frame) -> bytes:
    """The frame's protocol v1 bytes."""
    node = frame.node_id.encode("ascii")
    payload = frame.values.tobytes()
    header = HEADER.pack(
        MAGIC,
        VERSION,
        frame.msg_type,
        frame.flags,
        frame.encoding,
        frame.n_channels,
        len(node),
        frame.seq,
        frame.t0_us,
        frame.period_us,
        frame.n_samples,
        len(payload),
    )
    if frame.encoding is Encoding.INT16:
        params = b"".join(SCALE.pack(s) for s in frame.scales)
    elif frame.encoding is Encoding.INT8:
        params = INT8_PARAMS.pack(frame.scales[0], frame.zero_point)
    else:
        params = b""
    body = b"".join((header, node, params, payload))
    return body + CRC.pack(zlib.crc32(body))


class _Header(NamedTuple):
    magic: bytes
    version: int
    msg_type: int
    flags: int
    encoding: int
    n_channels: int
    node_len: int
    seq: int
    t0_us: int
    period_us: int
    n_samples: int
    payload_len: int


def decode(data: bytes | bytearray | memoryview, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
    """Parse one binary frame, raising a :class:`~gateway.protocol.errors.FrameError` leaf for bad input."""
    buf = data if isinstance(data, bytes) else memoryview(data).cast("B")
    header = _envelope(buf, max_frame_bytes)
    encoding = Encoding(header.encoding)  # _envelope checked it
    try:
        kind = MessageType(header.msg_type)
    except ValueError:
        raise InvalidField(f"unknown message type {header.msg_type}") from None
    n_samples, n_channels = header.n_samples, header.n_channels
    if n_channels == 0 or n_samples == 0:
        raise InvalidField(f"shape must be at least 1x1, got {n_samples} samples x {n_channels} channels")
    if header.payload_len != n_samples * n_channels * encoding.dtype.itemsize:
        raise LengthMismatch(
            f"payload of {header.payload_len} bytes does not hold {n_samples}x{n_channels} {encoding.label} values"
        )
    offset = HEADER.size + header.node_len
    try:
        node_id = bytes(buf[HEADER.size : offset]).decode("ascii")
    except UnicodeDecodeError:
        raise InvalidField("node id is not ASCII") from None
    scales, zero_point = _params(buf, offset, encoding, n_channels)
    offset += _params_size(encoding, n_channels)
    values = np.frombuffer(buf, dtype=encoding.dtype, count=n_samples * n_channels, offset=offset)
    return Frame(
        node_id=node_id,
        seq=header.seq,
        t0_us=header.t0_us,
        period_us=header.period_us,
        encoding=encoding,
        values=values.reshape(n_samples, n_channels),
        scales=scales,
        zero_point=zero_point,
        msg_type=kind,
        flags=header.flags,
    )


def _envelope(buf: bytes | memoryview, max_frame_bytes: int) -> _Header:
    """Check size, magic, version, declared length and checksum; return the header."""
    size = len(buf)
    if size > max_frame_bytes:
        raise FrameTooLarge(f"{size} bytes exceeds the {max_frame_bytes}-byte limit")
    if size < len(MAGIC):
        raise Truncated(f"{size} bytes cannot hold the magic")
    if bytes(buf[:2]) != MAGIC:
        raise BadMagic(f"starts with {bytes(buf[:2])!r}, expected {MAGIC!r} or a JSON object")
    if size < 3:
        raise Truncated("no version byte")
    if buf[2] != VERSION:
        raise UnsupportedVersion(f"version {buf[2]}, this gateway speaks {VERSION}")
    if size < HEADER.size + CRC.size:
        raise Truncated(f"{size} bytes is shorter than the {HEADER.size + CRC.size}-byte minimum")
    header = _Header(*HEADER.unpack_from(buf, 0))
    if header.encoding not in Encoding.__members__.values():
        raise InvalidField(f"unknown encoding {header.encoding}")
    if header.payload_len > max_frame_bytes:
        raise DeclaredLengthTooLarge(f"declares a {header.payload_len}-byte payload, limit {max_frame_bytes}")
    params_len = _params_size(Encoding(header.encoding), header.n_channels)
    expected = HEADER.size + header.node_len + params_len + header.payload_len + CRC.size
    if size < expected:
        raise Truncated(f"{size} bytes, the header declares {expected}")
    if size > expected:
        raise LengthMismatch(f"{size - expected} bytes trail the {expected}-byte frame")
    body_end = expected - CRC.size
    (crc,) = CRC.unpack_from(buf, body_end)
    actual = zlib.crc32(buf[:body_end])
    if crc != actual:
        raise BadChecksum(f"CRC-32 {crc:#010x} in the trailer, {actual:#010x} computed")
    return header


def _params(
    buf: bytes | memoryview, offset: int, encoding: Encoding, n_channels: int
) -> tuple[tuple[float, ...], int]:
    """The encoding's scales and zero point."""
    if encoding is Encoding.INT16:
        return tuple(SCALE.unpack_from(buf, offset + SCALE.size * i)[0] for i in range(n_channels)), 0
    if encoding is Encoding.INT8:
        scale, zero_point = INT8_PARAMS.unpack_from(buf, offset)
        return (scale,), zero_point
    return (), 0
