"""Synthetic series through the gateway's storage (edgegen/gateway/synthetic.py): the records they become, a real
InfluxDB 1.6.7 (exact counts per series, idempotent rewrites, 413 splits, dead letters beside stored points, random
names), SQLite, and InfluxDB 2.x as a scripted HTTP server checking the exact request: no 2.x server can be
installed here, so the 2.x path is verified only as far as the request it sends."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import re
import sqlite3
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.gateway.storage import lineprotocol
from edgegen.gateway.storage.base import Storage
from edgegen.gateway.storage.errors import LineProtocolError, StorageNotFound, StorageUnavailable
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.gateway.storage.influx2 import Influx2Storage
from edgegen.gateway.storage.sqlite import SqliteStorage
from edgegen.gateway.synthetic import RESERVED_FIELD_KEYS, SyntheticStored, store_synthetic, synthetic_records
from edgegen.gateway.writer import CAUSE_REFUSED
from edgegen.models.synthetic_out import SyntheticBatch
from tests.support.scripted_http import Reply, Request, ScriptedHttpServer
from tests.support.servers import InfluxDB, free_port

T0_US = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
FOUR_WEEKS_US = 28 * 24 * 3600 * 1_000_000  # longer than a shard group (7 days): each step in a shard of its own
CHANNELS = ("Accelerometer1RMS", "Volume Flow RateRMS")
IDS = ["synthetic-skab-mode,1-7-0", "synthetic-skab-mode,1-7-1"]
TAGS = "failure_mode=mode\\,1,generator=edgegen-gen/1,model=skab"
CREATED = Reply(200, '{"results":[{"statement_id":0}]}')
_measurements = itertools.count()


def _batch(length: int = 3, period_us: int = 250_000, **overrides: Any) -> SyntheticBatch:
    """2 series x ``length`` steps x 2 channels; value = series + step / 4 + channel / 8 (exact in binary)."""
    s, k, c = np.meshgrid(np.arange(2), np.arange(length), np.arange(2), indexing="ij")
    fields: dict[str, Any] = {
        "values": (s + k / 4 + c / 8).astype(np.float64),
        "channels": CHANNELS,
        "failure_mode": "mode,1",
        "generator_version": "edgegen-gen/1",
        "model_name": "skab",
        "start_us": T0_US,
        "period_us": period_us,
        "seed": 7,
    }
    return SyntheticBatch(**{**fields, **overrides})


def _line(series: int, step: int, period_us: int = 250_000) -> str:
    """The line protocol of one point of :func:`_batch`, as docs/storage.md gives the schema."""
    a = series + step / 4
    return (
        f"synthetic,{TAGS},series=synthetic-skab-mode\\,1-7-{series},synthetic=true "
        f"Accelerometer1RMS={a!r},Volume\\ Flow\\ RateRMS={a + 1 / 8!r} {T0_US + step * period_us}"
    )


def _store(batch: SyntheticBatch, storage: Storage, **kwargs: Any) -> SyntheticStored:
    return asyncio.run(store_synthetic(batch, storage, deadline_s=kwargs.pop("deadline_s", 30), **kwargs))


# ---- records --------------------------------------------------------------------------------------------------


def test_records_are_blocks_of_one_series_with_one_point_per_step() -> None:
    records = synthetic_records(_batch(length=5), steps_per_record=2)
    blocks = [(dict(r.points[0].tags)["series"], r.points[0].ts_us, len(r.points)) for r in records]
    assert blocks == [(series, T0_US + k * 250_000, min(2, 5 - k)) for series in IDS for k in (0, 2, 4)]
    lines, values = lineprotocol.encode_records(records)
    assert lines == [_line(s, k) for s in range(2) for k in range(5)]
    assert values == 20


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"channels": ("time", "x")}, r"channel names \['time'\] clash"),
        ({"channels": ("x", "series")}, r"channel names \['series'\] clash"),
        ({"channels": ("a\\,b", "x")}, "backslash before a separator in field key"),
        ({"channels": ("\tx", "y")}, "leading tab or NUL in field key"),
        ({"failure_mode": "two\nlines"}, "newline in failure_mode tag"),
        ({"failure_mode": "ends\\"}, "trailing backslash in failure_mode tag"),
        ({"model_name": ""}, "empty model tag"),
        ({"values": np.full((2, 3, 2), np.inf)}, "12 non-finite values"),
    ],
)
def test_what_no_backend_can_store_is_refused_before_any_request(overrides: dict[str, Any], message: str) -> None:
    async def go() -> list[Request]:
        async with ScriptedHttpServer([CREATED, Reply(204)]) as server:
            with pytest.raises(LineProtocolError, match=message) as caught:
                await store_synthetic(_batch(**overrides), Influx1Storage(server.url, "plant"), deadline_s=5)
            assert caught.value.retryable is False
            return server.requests

    assert asyncio.run(go()) == []  # not even CREATE DATABASE


def test_a_comment_like_measurement_is_refused() -> None:
    with pytest.raises(LineProtocolError, match="comment"):
        synthetic_records(_batch(), measurement="#synthetic")


# ---- InfluxDB 2.x: the exact request (no 2.x server here) --------------------------------------------------


def test_influx2_request_is_the_schema_to_the_v2_endpoint() -> None:
    async def go() -> tuple[list[Request], SyntheticStored]:
        async with ScriptedHttpServer([Reply(204)]) as server:
            storage = Influx2Storage(server.url, org="acme", bucket="plant", token="tok-123", timeout_s=5)
            return server.requests, await store_synthetic(_batch(), storage, deadline_s=5)

    [request], stored = asyncio.run(go())
    assert (stored.points_stored, stored.refused, stored.points_unwritten, stored.requests) == (6, (), 0, 1)
    assert (request.method, request.path) == ("POST", "/api/v2/write")
    assert request.query == {"org": "acme", "bucket": "plant", "precision": "us"}
    assert request.headers["Authorization"] == "Token tok-123"
    body = gzip.decompress(request.body) if request.headers.get("Content-Encoding") == "gzip" else request.body
    assert body.decode().split("\n") == [_line(s, k) for s in range(2) for k in range(3)]


# ---- what storing does under each answer (scripted: a real server will not misbehave on cue) ----------------


def test_credentials_refused_end_the_write_at_once() -> None:
    async def go() -> tuple[list[Request], SyntheticStored]:
        async with ScriptedHttpServer([CREATED, Reply(401, '{"error":"authorization failed"}')]) as server:
            storage = Influx1Storage(server.url, "plant", "gen", "wrong")
            return server.requests, await store_synthetic(_batch(), storage, deadline_s=30)

    started = time.monotonic()
    requests, stored = asyncio.run(go())
    assert time.monotonic() - started < 5  # not the 30 s deadline: the gateway's auth retries are not for a CLI
    assert [r.path for r in requests] == ["/query", "/write"]
    assert (stored.points_stored, stored.points_unwritten, stored.refused) == (0, 6, ())
    assert stored.gave_up is not None
    assert stored.gave_up.startswith("storage refuses the credentials: HTTP 401")


@pytest.mark.slow
def test_an_unavailable_server_is_retried_until_the_deadline() -> None:
    async def go() -> tuple[list[Request], SyntheticStored]:
        async with ScriptedHttpServer([CREATED, Reply(503, "overloaded"), Reply(500, "boom")]) as server:
            # then "script exhausted" (500) for ever
            return server.requests, await store_synthetic(
                _batch(), Influx1Storage(server.url, "plant"), deadline_s=1
            )

    started = time.monotonic()
    requests, stored = asyncio.run(go())
    assert 1 <= time.monotonic() - started < 3
    assert len(requests) >= 4  # CREATE DATABASE, then a write and at least two retries
    assert (stored.points_stored, stored.points_unwritten, stored.gave_up) == (
        0,
        6,
        "storage did not take every point within 1 s",
    )


def test_a_missing_database_raises_not_found() -> None:
    async def go() -> None:
        async with ScriptedHttpServer([Reply(404, '{"error":"database not found: \\"plant\\""}')]) as server:
            await store_synthetic(
                _batch(), Influx1Storage(server.url, "plant", create_database=False), deadline_s=5
            )

    with pytest.raises(StorageNotFound, match="database not found"):
        asyncio.run(go())


def test_an_unreachable_server_fails_on_open() -> None:
    with pytest.raises(StorageUnavailable) as caught:
        _store(_batch(), Influx1Storage(f"http://127.0.0.1:{free_port()}", "plant", timeout_s=2))
    assert caught.value.retryable is True


# ---- SQLite ---------------------------------------------------------------------------------------------------


def test_sqlite_keeps_one_row_per_value_and_rewrites_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "edgegen.sqlite"
    for _ in range(2):
        assert _store(_batch(), SqliteStorage(path)).points_stored == 6
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT tags, count(*) FROM derived WHERE measurement = 'synthetic' GROUP BY tags")
        counts = dict(rows.fetchall())
    assert counts == {
        f"failure_mode=mode,1,generator=edgegen-gen/1,model=skab,series={s},synthetic=true": 6 for s in IDS
    }


# ---- a real InfluxDB 1.6.7 ------------------------------------------------------------------------------------


def _select(server: InfluxDB, database: str, q: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"db": database, "q": q, "epoch": "u"})
    with urllib.request.urlopen(f"{server.url}/query?{query}", timeout=10) as response:
        result = json.loads(response.read())["results"][0]
    assert "error" not in result, result
    return [
        dict(zip(s["columns"], row, strict=True)) | s.get("tags", {})
        for s in result.get("series", [])
        for row in s["values"]
    ]


def _counts(server: InfluxDB, database: str) -> dict[str, int]:
    """Stored points per synthetic series (the first channel's values)."""
    rows = _select(
        server,
        database,
        'SELECT count("Accelerometer1RMS") FROM synthetic WHERE "synthetic" = \'true\' GROUP BY "series"',
    )
    return {r["series"]: r["count"] for r in rows}


@pytest.mark.influxdb
def test_points_read_back_exactly_and_a_rerun_changes_nothing(influxdb: InfluxDB, influx_database: str) -> None:
    stored = _store(_batch(), Influx1Storage(influxdb.url, influx_database))
    assert (stored.points_stored, stored.refused, stored.points_unwritten, stored.requests) == (6, (), 0, 1)
    rows = _select(influxdb, influx_database, "SELECT * FROM synthetic")
    assert rows == [
        {
            "time": T0_US + 250_000 * k,
            "Accelerometer1RMS": s + k / 4,
            "Volume Flow RateRMS": s + k / 4 + 1 / 8,
            "failure_mode": "mode,1",
            "generator": "edgegen-gen/1",
            "model": "skab",
            "series": IDS[s],
            "synthetic": "true",
        }
        for k in range(3)
        for s in range(2)
    ]
    assert _counts(influxdb, influx_database) == {IDS[0]: 3, IDS[1]: 3}
    assert _store(_batch(), Influx1Storage(influxdb.url, influx_database)).points_stored == 6
    assert _counts(influxdb, influx_database) == {IDS[0]: 3, IDS[1]: 3}  # idempotent: same points, same count


@pytest.fixture
def small_body_influxdb(tmp_path: Path) -> Iterator[InfluxDB]:
    """A real InfluxDB that answers 413 to a request body over 500 bytes (``[http] max-body-size``)."""
    server = InfluxDB(tmp_path / "influxdb")
    server.conf.write_text(server.conf.read_text().replace("[http]\n", "[http]\n  max-body-size = 500\n"))
    server.start()
    yield server
    server.stop()


@pytest.mark.influxdb
def test_a_batch_over_the_request_limit_is_split_until_every_point_is_stored(
    small_body_influxdb: InfluxDB,
) -> None:
    batch = _batch(length=8)
    records = synthetic_records(batch, steps_per_record=4)
    sizes = [len(line) + 1 for line in lineprotocol.record_lines(records[0])[0]]
    assert sum(sizes[:2]) <= 500 < sum(sizes[:3])  # two lines pass, a record of four does not: it is halved
    stored = _store(batch, Influx1Storage(small_body_influxdb.url, "split"), steps_per_record=4)
    assert (stored.points_stored, stored.refused, stored.points_unwritten) == (16, (), 0)
    # 413 for the 4 records, then per half [r0 r1] and [r2 r3]: 413, then per record: 413 and two halves that pass
    assert stored.requests == 1 + 2 * (1 + 2 * 3)
    assert _counts(small_body_influxdb, "split") == {IDS[0]: 8, IDS[1]: 8}


@pytest.mark.influxdb
def test_refused_points_are_dead_lettered_and_the_rest_stored(influxdb: InfluxDB, influx_database: str) -> None:
    batch = _batch(length=6, period_us=FOUR_WEEKS_US)
    influxdb.create_database(influx_database)
    # An integer Accelerometer1RMS in the shards of steps 3-5: InfluxDB refuses the float ones there ("field type
    # conflict"), naming no line; steps 0-2 are in shards of their own and stay writable.
    conflicts = "\n".join(
        f"synthetic,series=other Accelerometer1RMS=1i {T0_US + k * FOUR_WEEKS_US}" for k in (3, 4, 5)
    )
    influxdb.write(influx_database, conflicts)
    stored = _store(batch, Influx1Storage(influxdb.url, influx_database), steps_per_record=3)
    assert (stored.points_stored, stored.points_refused, stored.points_unwritten, stored.gave_up) == (
        6,
        6,
        0,
        None,
    )
    assert [(r.series, r.first_us, r.points, r.cause) for r in stored.refused] == [
        (series, T0_US + 3 * FOUR_WEEKS_US, 3, CAUSE_REFUSED) for series in IDS
    ]
    assert all("field type conflict" in r.detail for r in stored.refused)
    assert _counts(influxdb, influx_database) == {IDS[0]: 3, IDS[1]: 3}
    # the batch, then bisection: [s0 0-2, s0 3-5] -> each alone; [s1 0-2, s1 3-5] -> each alone
    assert stored.requests == 7


# ---- R9-style: random names and values through a real InfluxDB ----------------------------------------------

SPECIAL = list(',= "\\#')
TEXT = st.text(
    st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))),
    min_size=1,
    max_size=10,
)
LABEL = TEXT.filter(lambda s: not s.endswith("\\"))  # a trailing backslash is refused (tested above)
# The gateway's rules for field keys (tests/gateway/test_lineprotocol_influx.py): no backslash before a separator
CHANNEL = TEXT.filter(lambda s: not re.search(r'\\(?=[,= "]|$)', s) and s not in RESERVED_FIELD_KEYS)


@st.composite
def batches(draw: st.DrawFn) -> SyntheticBatch:
    channels = tuple(draw(st.lists(CHANNEL, min_size=1, max_size=3, unique=True)))
    n, length = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    size = n * length * len(channels)
    values = draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=size, max_size=size))
    return SyntheticBatch(
        values=np.array(values, dtype=np.float64).reshape(n, length, len(channels)),
        channels=channels,
        failure_mode=draw(LABEL),
        generator_version=draw(LABEL),
        model_name=draw(LABEL),
        start_us=draw(st.integers(0, 4_000_000_000_000_000)),
        period_us=draw(st.integers(1, 10**9)),
        seed=draw(st.integers(0, 2**31)),
    )


@pytest.mark.influxdb
@given(batches())
@settings(max_examples=12, deadline=None)
def test_random_names_and_values_read_back_exactly_from_influxdb(
    influxdb: InfluxDB, batch: SyntheticBatch
) -> None:
    measurement = f"synthetic{next(_measurements)}"  # one database, a measurement per example: cheaper
    stored = _store(batch, Influx1Storage(influxdb.url, "synthprop"), measurement=measurement)
    assert (stored.points_stored, stored.refused) == (batch.n_series * batch.length, ())
    rows = _select(influxdb, "synthprop", f'SELECT * FROM "{measurement}"')
    # Go prints integral doubles without an exponent; float() reads them back to the same double
    got = {(r["series"], r["time"]): {c: float(r[c]) for c in batch.channels} for r in rows}
    assert got == {
        (series, int(t)): dict(zip(batch.channels, batch.values[s, k].tolist(), strict=True))
        for s, series in enumerate(batch.series_ids())
        for k, t in enumerate(batch.timestamps_us())
    }
    labels = {(r["failure_mode"], r["generator"], r["model"], r["synthetic"]) for r in rows}
    assert labels == {(batch.failure_mode, batch.generator_version, batch.model_name, "true")}
