"""R2: every kind of malformed message maps to exactly one typed rejection; nothing crashes."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from edgegen.gateway.protocol import (
    BadChecksum,
    BadMagic,
    DeclaredLengthTooLarge,
    Encoding,
    Frame,
    FrameError,
    FrameTooLarge,
    InvalidField,
    LengthMismatch,
    MalformedJson,
    Truncated,
    UnsupportedVersion,
    decode,
    decode_message,
    encode,
)
from edgegen.gateway.protocol.frame import HEADER
from edgegen.simulators.faults import malformed_messages

FRAME = Frame("node-1", 41, 1_700_000_000_000_000, 1000, Encoding.INT16, np.arange(12).reshape(4, 3), (0.5,) * 3)
GOOD = encode(FRAME)


def _with_crc(body: bytes | bytearray) -> bytes:
    """A frame whose checksum is right, so only the field under test is wrong."""
    return bytes(body[:-4]) + struct.pack("<I", zlib.crc32(body[:-4]))


def _patched(offset: int, fmt: str, value: int) -> bytes:
    raw = bytearray(GOOD)
    struct.pack_into(fmt, raw, offset, value)
    return _with_crc(raw)


def _zero_samples() -> bytes:
    """A consistent 0x3 frame with an empty payload: lengths and checksum agree, only the shape is wrong."""
    raw = bytearray(GOOD[: HEADER.size + len("node-1") + 12]) + bytes(4)
    struct.pack_into("<HI", raw, 24, 0, 0)
    return _with_crc(raw)


CASES: list[tuple[str, bytes, type[FrameError]]] = [
    ("empty", b"", Truncated),
    ("one byte", b"E", Truncated),
    ("magic only", b"EG", Truncated),
    ("header cut", GOOD[:20], Truncated),
    ("payload cut", GOOD[:-5], Truncated),
    ("crc cut", GOOD[:-1], Truncated),
    ("trailing byte", GOOD + b"\x00", LengthMismatch),
    ("wrong magic", b"GE" + GOOD[2:], BadMagic),
    ("binary noise", bytes(range(200, 256)), BadMagic),
    ("version 0", _patched(2, "<B", 0), UnsupportedVersion),
    ("version 2", _patched(2, "<B", 2), UnsupportedVersion),
    ("version 255", _patched(2, "<B", 255), UnsupportedVersion),
    ("100 MB declared", _patched(26, "<I", 100_000_000), DeclaredLengthTooLarge),
    ("4 GB declared", _patched(26, "<I", 0xFFFFFFFF), DeclaredLengthTooLarge),
    ("payload flip", bytes(GOOD[:-5]) + bytes([GOOD[-5] ^ 0x80]) + GOOD[-4:], BadChecksum),
    ("crc flip", GOOD[:-1] + bytes([GOOD[-1] ^ 1]), BadChecksum),
    ("seq flip (crc unchanged)", bytes(GOOD[:8]) + bytes([GOOD[8] ^ 1]) + GOOD[9:], BadChecksum),
    ("unknown encoding", _patched(5, "<B", 9), InvalidField),
    ("unknown message type", _patched(3, "<B", 7), InvalidField),
    ("reserved flag", _patched(4, "<B", 0x80), InvalidField),
    ("zero period", _patched(20, "<I", 0), InvalidField),
    ("zero samples", _zero_samples(), InvalidField),
    ("shape disagrees with length", _patched(24, "<H", 5), LengthMismatch),
    ("node id not ASCII", _with_crc(bytes(GOOD[:30]) + b"\xffode-1" + GOOD[36:]), InvalidField),
    ("node id with slash", _with_crc(bytes(GOOD[:30]) + b"no/e-1" + GOOD[36:]), InvalidField),
    ("NaN scale", _with_crc(bytes(GOOD[:36]) + struct.pack("<f", float("nan")) + GOOD[40:]), InvalidField),
    ("zero scale", _with_crc(bytes(GOOD[:36]) + struct.pack("<f", 0.0) + GOOD[40:]), InvalidField),
]


@pytest.mark.parametrize(("name", "raw", "error"), CASES, ids=[c[0] for c in CASES])
def test_each_malformed_frame_gets_its_typed_rejection(name: str, raw: bytes, error: type[FrameError]) -> None:
    with pytest.raises(FrameError) as caught:
        decode(raw)
    assert type(caught.value) is error, f"{name}: {caught.value!r}"


def test_the_valid_frame_still_decodes_after_all_rejections() -> None:
    for _, raw, _ in CASES:
        with pytest.raises(FrameError):
            decode(raw)
    assert decode(GOOD) == FRAME


def test_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(FrameTooLarge):
        decode_message(GOOD, max_frame_bytes=len(GOOD) - 1)
    with pytest.raises(FrameTooLarge):
        decode_message(b"{" + b" " * 100, max_frame_bytes=50)
    assert decode_message(GOOD, max_frame_bytes=len(GOOD)) == FRAME


JSON_CASES: list[tuple[str, bytes, type[FrameError]]] = [
    ("not json", b"{nope", MalformedJson),
    ("array", b" [1, 2]", BadMagic),  # not an object: not JSON form at all
    ("object but not a frame", b"{}", InvalidField),
    (
        "seq as string",
        b'{"v":1,"type":"samples","node":"n","seq":"1","t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0]]}',
        InvalidField,
    ),
    (
        "seq as float",
        b'{"v":1,"type":"samples","node":"n","seq":1.0,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0]]}',
        InvalidField,
    ),
    (
        "seq as bool",
        b'{"v":1,"type":"samples","node":"n","seq":true,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0]]}',
        InvalidField,
    ),
    (
        "version 2",
        b'{"v":2,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0]]}',
        InvalidField,
    ),
    (
        "unknown key",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0]],"extra":1}',
        InvalidField,
    ),
    (
        "ragged rows",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0],[1.0,2.0]]}',
        InvalidField,
    ),
    (
        "float in int16",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,'
        b'"encoding":"int16","scales":[1.0],"values":[[1.5]]}',
        InvalidField,
    ),
    (
        "int16 overflow",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,'
        b'"encoding":"int16","scales":[1.0],"values":[[40000]]}',
        InvalidField,
    ),
    (
        "missing scales",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,"encoding":"int16","values":[[1]]}',
        InvalidField,
    ),
    (
        "float32 overflow",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1e300]]}',
        InvalidField,
    ),
    (
        "seq too large",
        b'{"v":1,"type":"samples","node":"n","seq":4294967296,"t0_us":0,"period_us":1,'
        b'"encoding":"float32","values":[[1.0]]}',
        InvalidField,
    ),
    (
        "empty values",
        b'{"v":1,"type":"samples","node":"n","seq":1,"t0_us":0,"period_us":1,"encoding":"float32","values":[]}',
        InvalidField,
    ),
    ("bad utf-8", b'{"v":1,"node":"\xff"}', MalformedJson),
]


@pytest.mark.parametrize(("name", "raw", "error"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_each_malformed_json_frame_gets_its_typed_rejection(
    name: str, raw: bytes, error: type[FrameError]
) -> None:
    with pytest.raises(FrameError) as caught:
        decode_message(raw)
    assert type(caught.value) is error, f"{name}: {caught.value!r}"


def test_fault_injector_produces_exactly_the_cause_it_names() -> None:
    from edgegen.gateway.validate import validate

    topic = "edgegen/v1/site/node-1/data/vib"
    for cause, raw in malformed_messages(FRAME, other_node="impostor").items():
        with pytest.raises(FrameError) as caught:
            validate(topic, raw, 1 << 20)
        assert caught.value.cause == cause
