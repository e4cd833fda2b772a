"""The JSON form of a protocol v1 frame, for debugging and third-party nodes.

It carries exactly what the binary frame carries (raw values plus scales), so the two convert into each other
without loss. Validation is strict: ``"seq": "7"`` or ``"seq": 7.0`` is a wrong type, not a number.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from edgegen.gateway.protocol.errors import FrameTooLarge, InvalidField, MalformedJson
from edgegen.gateway.protocol.frame import DEFAULT_MAX_FRAME_BYTES, VERSION, Encoding, Frame, MessageType

_TYPES = {kind.name.lower(): kind for kind in MessageType}
_ENCODINGS = {enc.label: enc for enc in Encoding}


class _JsonFrame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1]
    type: Literal["samples", "embedding"]
    node: str
    seq: StrictInt
    t0_us: StrictInt
    period_us: StrictInt
    encoding: Literal["int16", "int8", "float32"]
    scales: list[StrictFloat | StrictInt] = Field(default_factory=list)
    zero_point: StrictInt = 0
    flags: StrictInt = 0
    values: list[list[StrictInt | StrictFloat | None]]


def is_json(payload: bytes | bytearray | memoryview) -> bool:
    """A JSON-form frame starts with ``{`` (after optional whitespace); a binary frame starts with ``EG``."""
    head = bytes(payload[:64]).lstrip()
    return head[:1] == b"{"


def to_json(frame: Frame) -> str:
    """The frame's JSON form.

    Float32 numbers print as the shortest decimal that reads back to the same float32 (``0.1``, not
    ``0.10000000149011612``); a non-finite float32 sample (a sensor's missing value) prints as ``null``.
    """
    values: list[list[Any]]
    if frame.encoding is Encoding.FLOAT32:
        values = [[_short(x) if math.isfinite(x) else None for x in row] for row in frame.values.tolist()]
    else:
        values = frame.values.tolist()
    doc: dict[str, Any] = {
        "v": VERSION,
        "type": frame.msg_type.name.lower(),
        "node": frame.node_id,
        "seq": frame.seq,
        "t0_us": frame.t0_us,
        "period_us": frame.period_us,
        "encoding": frame.encoding.label,
    }
    if frame.scales:
        doc["scales"] = [_short(s) for s in frame.scales]
    if frame.encoding is Encoding.INT8:
        doc["zero_point"] = frame.zero_point
    if frame.flags:
        doc["flags"] = frame.flags
    doc["values"] = values
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def _short(value: float) -> float:
    return float(str(np.float32(value)))


def from_json(
    payload: bytes | bytearray | memoryview | str, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> Frame:
    """Parse a JSON-form frame; raise :class:`MalformedJson` or :class:`InvalidField` for bad input."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > max_frame_bytes:
        raise FrameTooLarge(f"{len(raw)} bytes exceeds the {max_frame_bytes}-byte limit")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJson(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedJson(f"expected a JSON object, got {type(doc).__name__}")
    try:
        parsed = _JsonFrame.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "frame"
        raise InvalidField(f"{where}: {first['msg']}") from None
    encoding = _ENCODINGS[parsed.encoding]
    widths = {len(row) for row in parsed.values}
    if len(widths) > 1:
        raise InvalidField(f"values: rows have different channel counts {sorted(widths)}")
    rows: list[list[Any]] = parsed.values
    if encoding is Encoding.FLOAT32:
        rows = [[math.nan if x is None else x for x in row] for row in rows]
    elif any(not isinstance(x, int) for row in rows for x in row):
        raise InvalidField(f"values: {encoding.label} frames carry integers")
    dtype = np.float64 if encoding is Encoding.FLOAT32 else np.int64
    return Frame(
        node_id=parsed.node,
        seq=parsed.seq,
        t0_us=parsed.t0_us,
        period_us=parsed.period_us,
        encoding=encoding,
        values=np.asarray(rows, dtype=dtype).reshape(len(rows), -1 if rows else 0),
        scales=tuple(float(s) for s in parsed.scales),
        zero_point=parsed.zero_point,
        msg_type=_TYPES[parsed.type],
        flags=parsed.flags,
    )
