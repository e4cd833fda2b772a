"""R9: the line-protocol encoder (edgegen/gateway/storage/lineprotocol.py) through a real InfluxDB 1.6.7.

Arbitrary unicode names, with the characters line protocol treats specially (``,`` ``=`` space ``"`` ``\\`` and a
leading ``#``) drawn often, are written with ``/write`` and read back with ``/query``: names and float bits must
come back exactly. Newlines must be refused; NaN/Inf values must be counted, never silently dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import struct
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgegen.gateway.storage import lineprotocol as lp
from edgegen.gateway.storage.errors import LineProtocolError
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.gateway.storage.records import Point
from tests.support.servers import InfluxDB
from tests.support.storage_records import float_record

T0_US = 1_700_000_000_000_000
SPECIAL = list(',= "\\#')
_databases = itertools.count()

# Measurement names and field keys a backslash would corrupt: InfluxDB 1.6.7 reads "\," "\=" "\ " and '\"' there
# as escapes whatever precedes the backslash, so no escaping writes such a name back unchanged: the encoder refuses
# them (test_backslash_before_a_separator_is_refused). Tag keys and values read back exactly with any backslash but
# a trailing one.
BACKSLASH_GAP = re.compile(r'\\(?=[,= "]|$)')
# InfluxDB 1.6.7 skips tabs and NULs before a measurement and before the field set, so a measurement or field key
# starting with one would lose it (answering 204): the encoder refuses them (test_leading_tab_or_nul_is_refused).
LEADING_BLANK = ("\t", "\x00")

CHAR = st.one_of(
    st.sampled_from(SPECIAL), st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\n\r")
)
TEXT = st.text(CHAR, min_size=1, max_size=12)
TAG = TEXT.filter(lambda s: not s.endswith("\\"))  # a trailing backslash is refused by design (test_lineprotocol)
NAME = TEXT.filter(lambda s: not BACKSLASH_GAP.search(s) and not s.startswith(LEADING_BLANK))
MEASUREMENT = NAME.filter(lambda s: not s.startswith("#"))  # a comment line: refused, tested below
FIELD_KEY = NAME.filter(lambda s: s != "time")  # InfluxDB refuses a key named "time" (not an encoding matter)
TAG_KEY = TAG.filter(lambda s: s != "time")
FLOAT = st.floats(allow_nan=False, allow_infinity=False)


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def _post(server: InfluxDB, path: str, params: dict[str, str], data: bytes = b"") -> str:
    url = f"{server.url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10) as reply:
            return str(reply.read().decode())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"HTTP {exc.code}: {exc.read().decode()}") from exc


def _json_int(text: str) -> int | float:
    return -0.0 if text == "-0" else int(text)  # Go writes the double -0 as "-0": keep its sign


def fresh_database(server: InfluxDB) -> str:
    database = f"lp{next(_databases)}"
    server.create_database(database)
    return database


def read_back(
    server: InfluxDB, database: str
) -> dict[tuple[str, frozenset[tuple[str, str]], int], dict[str, float]]:
    """Every point in ``database``: (measurement, tags, time) -> fields, as InfluxDB returns them."""
    text = _post(server, "/query", {"db": database, "q": "SELECT * FROM /.*/ GROUP BY *", "epoch": "u"})
    [result] = json.loads(text, parse_int=_json_int)["results"]
    assert "error" not in result, result
    got: dict[tuple[str, frozenset[tuple[str, str]], int], dict[str, float]] = {}
    for series in result.get("series", []):
        tags = frozenset((k, v) for k, v in series.get("tags", {}).items() if v != "")  # "": tag not set
        for row in series["values"]:
            time_us, *values = row
            fields = {k: float(v) for k, v in zip(series["columns"][1:], values, strict=True) if v is not None}
            got[(series["name"], tags, int(time_us))] = fields
    return got


@st.composite
def point_sets(draw: st.DrawFn) -> list[Point]:
    """1-3 points with distinct timestamps; tag keys and field keys disjoint, so read-back is unambiguous."""
    field_keys = draw(st.lists(FIELD_KEY, min_size=1, max_size=3, unique=True))
    tag_keys = draw(st.lists(TAG_KEY.filter(lambda k: k not in field_keys), max_size=3, unique=True))
    result = []
    for i in range(draw(st.integers(1, 3))):
        tags = tuple(sorted((k, draw(TAG)) for k in tag_keys))
        fields = tuple(
            (k, draw(FLOAT)) for k in draw(st.lists(st.sampled_from(field_keys), min_size=1, unique=True))
        )
        result.append(Point(draw(MEASUREMENT), tags, fields, T0_US + i))
    return result


@pytest.mark.slow
@pytest.mark.influxdb
@given(point_sets())
@example([Point('m#",= \\x', (("#t", '#v",= '), ('k"', "a\\\\b")), (("#f", -0.0), ('f" =,', 5e-324)), 1)])
@example([Point("m", (), (("c", 1.7976931348623157e308), ("d", -2.2250738585072014e-308)), 2)])
@settings(max_examples=60, deadline=None)
def test_names_and_float_bits_read_back_exactly(influxdb: InfluxDB, pts: list[Point]) -> None:
    database = fresh_database(influxdb)
    body = "\n".join(lp.lines(pts))
    _post(influxdb, "/write", {"db": database, "precision": "u"}, body.encode())
    got = read_back(influxdb, database)
    expected = {(p.measurement, frozenset(p.tags), p.ts_us): dict(p.fields) for p in pts}
    assert got.keys() == expected.keys()
    for point_key, fields in expected.items():
        assert {k: bits(v) for k, v in got[point_key].items()} == {k: bits(v) for k, v in fields.items()}


@given(
    point_sets(),
    st.sampled_from(["measurement", "tag key", "tag value", "field key"]),
    st.sampled_from(["\n", "\r", "\r\n"]),
    st.integers(0, 12),
)
@settings(max_examples=60, deadline=None)
def test_newlines_anywhere_are_refused(pts: list[Point], where: str, newline: str, at: int) -> None:
    p = pts[0]
    measurement, tags, fields = p.measurement, (("k", "v"), *p.tags), p.fields

    def cut(name: str) -> str:
        return name[:at] + newline + name[at:]

    (tag_key, tag_value), *other_tags = tags
    (field_key, value), *other_fields = fields
    if where == "measurement":
        measurement = cut(measurement)
    elif where == "tag key":
        tags = ((cut(tag_key), tag_value), *other_tags)
    elif where == "tag value":
        tags = ((tag_key, cut(tag_value)), *other_tags)
    else:
        fields = ((cut(field_key), value), *other_fields)
    with pytest.raises(LineProtocolError, match="newline"):
        lp.line(Point(measurement, tags, fields, p.ts_us))


@given(NAME)
def test_a_measurement_starting_with_hash_is_refused(name: str) -> None:
    with pytest.raises(LineProtocolError, match="comment"):
        lp.line(Point("#" + name, (), (("f", 1.0),), 0))


@pytest.mark.influxdb
@given(
    st.lists(
        st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=2, max_size=2),
        min_size=1,
        max_size=6,
    )
)
@example([[math.nan, math.inf], [-math.inf, 0.5], [-0.0, 3.4028234663852886e38]])
@settings(max_examples=30, deadline=None)
def test_non_finite_values_are_counted_and_the_rest_stored(influxdb: InfluxDB, rows: list[list[float]]) -> None:
    rec = float_record(rows, t0_us=T0_US)
    physical = rec.frame.physical()
    finite = np.isfinite(physical)
    assert rec.nonfinite == int((~finite).sum())
    assert rec.storable_values + rec.nonfinite == physical.size  # every value is stored or counted
    for row in physical.tolist():  # the encoder itself refuses a non-finite field: no silent drop at that level
        for value in row:
            if not math.isfinite(value):
                with pytest.raises(LineProtocolError, match="non-finite"):
                    lp.line(Point("samples", (), (("c0", value),), 0))

    database = fresh_database(influxdb)

    async def write() -> int:
        storage = Influx1Storage(influxdb.url, database, create_database=False)
        await storage.open()
        try:
            return await storage.write([rec])
        finally:
            await storage.close()

    assert asyncio.run(write()) == rec.storable_values
    got = read_back(influxdb, database)
    tags = frozenset({"site": "s1", "node": "n1", "stream": "raw"}.items())
    expected: dict[Any, dict[str, bytes]] = {
        ("samples", tags, int(ts)): {f"c{c}": bits(v) for c, v in enumerate(row) if math.isfinite(v)}
        for ts, row in zip(rec.frame.timestamps_us().tolist(), physical.tolist(), strict=True)
        if any(math.isfinite(v) for v in row)  # a sample with no finite value has no point at all
    }
    assert {k: {f: bits(v) for f, v in fields.items()} for k, fields in got.items()} == expected


@pytest.mark.parametrize(
    ("measurement", "field"),
    [
        ("m\\,x", "f"),
        ('m\\"x', "f"),
        ("m\\=x", "f"),
        ("m\\ x", "f"),
        ("m", "f\\,x"),
        ("m", 'f\\"x'),
        ("m", "f\\=x"),
        ("m", "f\\ x"),
    ],
)
def test_backslash_before_a_separator_is_refused(measurement: str, field: str) -> None:
    with pytest.raises(LineProtocolError, match="backslash before a separator"):
        lp.line(Point(measurement, (("k", "v"),), ((field, 1.5),), T0_US))


@pytest.mark.parametrize(("measurement", "field"), [("\tm", "f"), ("\x00m", "f"), ("m", "\tf"), ("m", "\x00f")])
def test_leading_tab_or_nul_is_refused(measurement: str, field: str) -> None:
    with pytest.raises(LineProtocolError, match="leading tab or NUL"):
        lp.line(Point(measurement, (("k", "v"),), ((field, 1.5),), T0_US))
