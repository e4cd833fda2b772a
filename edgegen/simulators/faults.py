"""Malformed messages, one per rejection cause, built from a valid frame (for the demo and fault drills)."""

from __future__ import annotations

import json
import struct

from edgegen.gateway.protocol import Frame, encode, to_json
from edgegen.gateway.protocol.frame import HEADER


def malformed_messages(frame: Frame, other_node: str) -> dict[str, bytes]:
    """Cause -> message: each is ``frame`` broken in exactly one way the gateway must name."""
    good = encode(frame)
    body, crc = good[:-4], good[-4:]
    flipped = bytearray(good)
    flipped[-5] ^= 0x01  # last payload byte: only the checksum can tell
    wrong_version = bytearray(good)
    wrong_version[2] = 2
    huge = bytearray(good)
    struct.pack_into("<I", huge, HEADER.size - 4, 100_000_000)  # declares a 100 MB payload
    doc = json.loads(to_json(frame))
    doc["seq"] = str(doc["seq"])
    impostor = Frame(
        other_node, frame.seq, frame.t0_us, frame.period_us, frame.encoding, frame.values, frame.scales
    )
    return {
        "truncated": good[: len(good) // 2],
        "bad_checksum": bytes(flipped),
        "unsupported_version": bytes(wrong_version),
        "declared_length": bytes(huge),
        "length_mismatch": body + crc + b"\x00",
        "bad_magic": b"XX" + good[2:],
        "invalid_field": json.dumps(doc).encode(),
        "malformed_json": b'{"v": 1, "node": ',
        "node_mismatch": encode(impostor),
    }
