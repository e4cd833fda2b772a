"""InfluxDB line protocol (shared by the 1.x and 2.x backends).

Escaping follows the line-protocol reference: measurement names escape ``,`` and space; tag keys, tag values and
field keys escape ``,``, ``=`` and space. Refused, because no escape reads back the same on InfluxDB 1.x and 2.x:
newlines, a trailing backslash (1.x would read it as escaping the next separator), a measurement starting with
``#`` (a comment line), and in measurement names and field keys a backslash before a separator or a leading tab
or NUL (R9's property test through a real InfluxDB 1.6.7 found both).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence

from edgegen.gateway.storage.errors import LineProtocolError
from edgegen.gateway.storage.records import Derived, Point, Writable, field_names, points

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


@functools.lru_cache(maxsize=65_536)
def _key(text: str, what: str) -> str:
    """Escaped tag keys, tag values and field keys: the same few strings recur in every point."""
    return key(text, what)


@functools.lru_cache(maxsize=16_384)
def _prefix(name: str, tags: tuple[tuple[str, str], ...]) -> str:
    return measurement(name) + "".join(f",{_key(k, 'tag key')}={_key(v, 'tag value')}" for k, v in tags)


def line(point: Point) -> str:
    tags = "".join(f",{key(k, 'tag key')}={key(v, 'tag value')}" for k, v in point.tags)
    fields = ",".join(f"{key(k, 'field key')}={float_value(v)}" for k, v in point.fields)
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    return f"{measurement(point.measurement)}{tags} {fields} {point.ts_us}"


def lines(points: Iterable[Point]) -> list[str]:
    return [line(p) for p in points]


def record_lines(record: Writable) -> tuple[list[str], int]:
    """One record's lines and how many field values they carry: exactly ``[line(p) for p in points(record)]``,
    with the measurement, tag set and field keys escaped once per record instead of once per point."""
    if isinstance(record, Derived):
        out: list[str] = []
        values = 0
        for p in record.points:
            if not p.fields:
                raise LineProtocolError("a point needs at least one field")
            fields = ",".join(f"{_key(k, 'field key')}={float_value(v)}" for k, v in p.fields)
            out.append(f"{_prefix(p.measurement, p.tags)} {fields} {p.ts_us}")
            values += len(p.fields)
        return out, values
    if record.nonfinite:  # rare: leave the non-finite values out point by point
        pts = list(points(record))
        return [line(p) for p in pts], sum(len(p.fields) for p in pts)
    tags = (("node", record.node), ("site", record.site), ("stream", record.stream))
    prefix = _prefix(record.measurement, tags)
    keys = [_key(name, "field key") + "=" for name in field_names(record)]
    rows = record.frame.physical().tolist()
    lines_ = [
        f"{prefix} {','.join(map(str.__add__, keys, map(repr, row)))} {ts}"
        for ts, row in zip(record.frame.timestamps_us().tolist(), rows, strict=True)
    ]
    return lines_, len(rows) * len(keys)


def encode_records(records: Sequence[Writable]) -> tuple[list[str], int]:
    """The records' lines and how many field values they carry."""
    out: list[str] = []
    values = 0
    for record in records:
        lines_, n = record_lines(record)
        out.extend(lines_)
        values += n
    return out, values


MAX_LINES_PER_REQUEST = 5000  # InfluxDB's advice for write batches; also keeps each body well under 1 MB


def chunks(lines: Sequence[str], size: int = MAX_LINES_PER_REQUEST) -> list[Sequence[str]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]
