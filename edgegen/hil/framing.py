"""Host side of the target's framed records (the target side: edgegen/hil/scripts/hil_frame.py).

A record is one line, ``#EG1 <length> <crc32 hex> <payload>``: the payload is compact JSON, the length its
bytes in UTF-8, the CRC-32 zlib's. Lines without the marker are REPL noise (banners, echoes, soft-reset
messages) and are skipped; a line with the marker that does not check out raises (retryable: run it again).
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from edgegen.hil.errors import BadChecksum, Truncated

MARKER = "#EG1 "
_HEADER = re.compile(r"#EG1 (\d{1,9}) ([0-9a-f]{8}) ")


def encode(record: Any) -> str:
    """The line (without newline) the target prints for ``record``."""
    payload = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    data = payload.encode()
    return f"{MARKER}{len(data)} {zlib.crc32(data):08x} {payload}"


def decode_line(line: str) -> list[Any]:
    """The record on this line, as a list of one; [] for a line without one (noise: JSON null is a record).
    Raises Truncated or BadChecksum."""
    at = line.find(MARKER)
    if at < 0:
        return []
    text = line[at:].rstrip("\r\n")
    header = _HEADER.match(text)
    if header is None:
        raise Truncated(f"record header cut off: {text[:40]!r}")
    data = text[header.end() :].encode()
    length = int(header.group(1))
    if len(data) < length:
        raise Truncated(f"record of {length} bytes ends after {len(data)}")
    if len(data) > length:
        raise BadChecksum(f"record of {length} bytes has {len(data)}")  # bytes were inserted, not lost
    if f"{zlib.crc32(data):08x}" != header.group(2):
        raise BadChecksum(f"record CRC-32 {zlib.crc32(data):08x}, header says {header.group(2)}")
    return [json.loads(data)]


def decode(output: str) -> list[Any]:
    """Every record in the target's output, in order; noise skipped."""
    records = []
    for line in output.split("\n"):  # not splitlines(): U+2028 and friends may sit inside a JSON string
        records += decode_line(line)
    return records
