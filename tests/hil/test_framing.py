"""The target's framed records (#EG1 <length> <crc32> <json>): round trip, REPL noise skipped, damage detected,
and the MicroPython encoder's lines accepted by the host parser byte for byte."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.hil import framing
from edgegen.hil.errors import BadChecksum, FramingError, Truncated
from edgegen.hil.latency import ENV
from edgegen.hil.stage import SCRIPTS
from tests.support.native import micropython_binary

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)  # JSON strings: no lone surrogates
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
RECORD = {"k": "out", "i": 32, "b64": "AQID/w=="}


@given(JSON)
def test_round_trip(record: Any) -> None:
    line = framing.encode(record)
    assert "\n" not in line
    assert framing.decode_line(line) == [record]
    assert framing.decode(f"{line}\r\n") == [record]


def test_the_exact_line() -> None:
    payload = '{"k":"out","i":32,"b64":"AQID/w=="}'
    assert framing.encode(RECORD) == f"#EG1 {len(payload)} b964097e {payload}"


def test_repl_noise_between_and_before_records_is_skipped() -> None:
    a, b = framing.encode({"k": "load"}), framing.encode([1, 2])
    output = (
        "MicroPython v1.24.1 on 2024-11-29; Raspberry Pi Pico with RP2040\r\n"
        'Type "help()" for more information.\r\n>>> \r\nMPY: soft reboot\r\n'
        f"raw REPL; CTRL-B to exit\r\n>OK{a}\r\nwarning: something\r\n{b}\r\n\x04\x04>"
    )
    assert framing.decode(output) == [{"k": "load"}, [1, 2]]


@pytest.mark.parametrize("cut", [5, 12, 20, -1])
def test_a_truncated_record_is_detected(cut: int) -> None:
    line = framing.encode(RECORD)
    with pytest.raises(Truncated) as caught:
        framing.decode(f"{line[:cut]}\r\n{framing.encode([1])}\r\n")
    assert caught.value.retryable


def test_a_flipped_payload_byte_is_a_bad_checksum() -> None:
    line = framing.encode(RECORD).replace("AQID", "AQIE")
    with pytest.raises(BadChecksum, match=r"^record CRC-32 1f1302ca, header says b964097e$"):
        framing.decode_line(line)


def test_inserted_bytes_are_detected() -> None:
    line = framing.encode(RECORD).replace("AQID", "AQ>>> ID")
    with pytest.raises(BadChecksum, match=r"^record of 35 bytes has 39$"):
        framing.decode_line(line)


@pytest.mark.parametrize(
    ("old", "new"), [("b964097e", "b964097f"), (" 35 ", " 34 "), (" 35 ", " 3x "), ("b964097e", "B964097E")]
)
def test_a_damaged_header_is_detected(old: str, new: str) -> None:
    with pytest.raises(FramingError):
        framing.decode_line(framing.encode(RECORD).replace(old, new))


def test_a_line_without_the_marker_is_noise() -> None:
    assert framing.decode_line("#EG0 35 b964097e {}") == []
    assert framing.decode_line("") == []


MP_ENCODER = """
import json, sys
sys.path.insert(0, {scripts!r})
from hil_frame import line
for record in json.loads({records!r}):
    print(line(record))
"""


@pytest.mark.micropython
def test_the_micropython_encoder_writes_what_the_host_accepts() -> None:
    # Lists, scalars and one-key objects serialise the same on both sides; MicroPython orders dict keys its own
    # way, so wider objects are checked by value.
    same_bytes = [[1, -2, 3], "text é ✓", {"k": "done"}, [{"v": [0, 4294967295]}, None, True], 0]
    by_value = [RECORD, {"k": "load", "firmware": "0.1.0", "windows": 64, "x": [{"a": "b", "c": 1.5}]}]
    script = MP_ENCODER.format(scripts=str(SCRIPTS), records=json.dumps(same_bytes + by_value))
    done = subprocess.run(
        [micropython_binary(), "-c", script], capture_output=True, timeout=30, env=ENV, check=True
    )
    lines = done.stdout.decode().split("\n")
    assert lines[-1] == ""
    assert lines[: len(same_bytes)] == [framing.encode(r) for r in same_bytes]
    assert framing.decode(done.stdout.decode()) == same_bytes + by_value
