"""InfluxDB line protocol (shared by the 1.x and 2.x backends).

Escaping follows the line-protocol reference: measurement names escape ``,`` and space; tag keys, tag values and
field keys escape ``,``, ``=`` and space. Refused, because no escape reads back the same on InfluxDB 1.x and 2.x:
newlines, a trailing backslash (1.x would read it as escaping the next separator), a measurement starting with
``#`` (a comment line), and in measurement names and field keys a backslash before a separator or a leading tab
or NUL (R9's property test through a real InfluxDB 1.6.7 found both).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from gateway.storage.errors import LineProtocolError
from gateway.storage.records import Point, Writable, points

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_BACKSLASH_BEFORE_SEPARATOR = re.compile(r'\\(?=[,= "])')


def _check(text: str, what: str) -> str:
    if not text:
        raise LineProtocolError(f"empty {what}")
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"newline in {what} {text!r}")
    if text.endswith("\\"):
        raise LineProtocolError(f"trailing backslash in {what} {text!r}")
    return text


def _check_name(text: str, what: str) -> str:
    """Measurement names and field keys: InfluxDB 1.x reads a backslash before ``,`` ``=`` space or ``"`` there
    as an escape whatever precedes it, and skips a leading tab or NUL, so such names cannot be written back."""
    _check(text, what)
    if _BACKSLASH_BEFORE_SEPARATOR.search(text):
        raise LineProtocolError(f"backslash before a separator in {what} {text!r}")
    if text.startswith(("\t", "\x00")):
        raise LineProtocolError(f"leading tab or NUL in {what} {text!r}")
    return text


def measurement(name: str) -> str:
    if _check_name(name, "measurement").startswith("#"):
        raise LineProtocolError(f"measurement {name!r} would read as a comment")
    return name.translate(_MEASUREMENT)


def key(text: str, what: str = "key") -> str:
    if what == "field key":
        _check_name(text, what)
    return _check(text, what).translate(_KEY)


def float_value(value: float) -> str:
    """Shortest decimal that reads back to the same double (InfluxDB parses it with strconv.ParseFloat)."""
    if not math.isfinite(value):
        raise LineProtocolError(f"non-finite field value {value!r}")
    return repr(float(value))


def line(point: Point) -> str:
    tags = "".join(f",{key(k, 'tag key')}={key(v, 'tag value')}" for k, v in point.tags)
    fields = ",".join(f"{key(k, 'field key')}={float_value(v)}" for k, v in point.fields)
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    return f"{measurement(point.measurement)}{tags} {fields} {point.ts_us}"


def lines(points: Iterable[Point]) -> list[str]:
    return [line(p) for p in points]


def encode_records(records: Sequence[Writable]) -> tuple[list[str], int]:
    """The records' lines and how many field values they carry."""
    out: list[str] = []
    values = 0
    for record in records:
        for point in points(record):
            out.append(line(point))
            values += len(point.fields)
    return out, values


MAX_LINES_PER_REQUEST = 5000  # InfluxDB's advice for write batches; also keeps each body well under 1 MB


def chunks(lines: list[str], size: int = MAX_LINES_PER_REQUEST) -> list[list[str]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]
