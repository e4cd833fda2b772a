"""The reference codec against the golden vectors (the MicroPython side: tests/firmware)."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

from edgegen.gateway.protocol import Encoding, Flag, Frame, MessageType, decode, encode, from_json, to_json
from tests.golden.regen_frames_v1 import frame_of
from tests.golden.vectors import vectors

VECTORS = vectors()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_reference_encoder_produces_golden_bytes(vector: dict[str, Any]) -> None:
    assert encode(frame_of(vector)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_reference_decoder_parses_golden_bytes(vector: dict[str, Any]) -> None:
    frame = decode(bytes.fromhex(vector["hex"]))
    assert frame.node_id == vector["node"]
    assert frame.seq == vector["seq"]
    assert frame.t0_us == vector["t0_us"]
    assert frame.period_us == vector["period_us"]
    assert frame.encoding is Encoding[vector["encoding"].upper()]
    assert frame.msg_type is MessageType[vector.get("type", "samples").upper()]
    assert frame.flags == vector.get("flags", 0)
    assert frame.zero_point == vector.get("zero_point", 0)
    assert frame.scales == tuple(float(np.float32(s)) for s in vector.get("scales", ()))
    expected = np.asarray(vector["values"], dtype=frame.encoding.dtype)
    assert frame.values.tobytes() == expected.tobytes()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_json_form_round_trips_to_the_same_bytes(vector: dict[str, Any]) -> None:
    frame = decode(bytes.fromhex(vector["hex"]))
    assert encode(from_json(to_json(frame))).hex() == vector["hex"]


def test_first_vector_layout_byte_by_byte() -> None:
    """docs/protocol.md's worked example, checked field by field without the codec's struct format."""
    raw = bytes.fromhex(VECTORS[0]["hex"])
    assert raw[0:2] == b"EG"
    assert raw[2] == 1  # version
    assert raw[3] == 1  # message type: samples
    assert raw[4] == 0  # flags
    assert raw[5] == 1  # encoding: int16
    assert raw[6] == 2  # channels
    assert raw[7] == 7  # node id length
    assert int.from_bytes(raw[8:12], "little") == 7  # seq
    assert int.from_bytes(raw[12:20], "little", signed=True) == 1_700_000_000_000_000  # t0_us
    assert int.from_bytes(raw[20:24], "little") == 10_000  # period_us
    assert int.from_bytes(raw[24:26], "little") == 3  # samples
    assert int.from_bytes(raw[26:30], "little") == 12  # payload bytes
    assert raw[30:37] == b"node-01"
    assert raw[37:41] == np.float32(0.01).tobytes()
    assert raw[41:45] == np.float32(0.5).tobytes()
    assert raw[45:57] == np.array([1, -2, 300, 4, -32768, 32767], dtype="<i2").tobytes()
    assert int.from_bytes(raw[57:61], "little") == zlib.crc32(raw[:57])
    assert len(raw) == 61


def test_physical_values_and_timestamps_of_first_vector() -> None:
    frame = decode(bytes.fromhex(VECTORS[0]["hex"]))
    assert frame.timestamps_us().tolist() == [1_700_000_000_000_000, 1_700_000_000_010_000, 1_700_000_000_020_000]
    s0 = float(np.float32(0.01))
    assert frame.physical().tolist() == [[s0, -1.0], [300 * s0, 2.0], [-32768 * s0, 32767 * 0.5]]


def test_event_flag_and_int8_dequantisation() -> None:
    event = decode(bytes.fromhex(VECTORS[2]["hex"]))
    assert event.flags == Flag.EVENT
    emb = decode(bytes.fromhex(VECTORS[3]["hex"]))
    scale = float(np.float32(0.05))
    assert emb.physical().tolist() == [[(q + 3) * scale for q in (-128, -3, 0, 1, 2, 64, 100, 127)]]


def test_frame_size_formula_in_the_protocol_doc() -> None:
    """docs/protocol.md: 30 + L + 4C + 2NC + 4 bytes; 50 samples x 3 channels from node-1 are 352 bytes."""
    frame = Frame("node-1", 0, 0, 10_000, Encoding.INT16, np.zeros((50, 3), dtype=np.int16), (1.0, 1.0, 1.0))
    assert len(encode(frame)) == 30 + 6 + 4 * 3 + 2 * 50 * 3 + 4 == 352
