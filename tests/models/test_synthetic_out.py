"""Writers of labelled synthetic series: CSV, Parquet, line protocol, and a real InfluxDB 1.6.7."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.models.errors import ModelsError, OutputError
from edgegen.models.synthetic_out import (
    RESERVED_COLUMNS,
    RESERVED_FIELD_KEYS,
    SyntheticBatch,
    to_line_protocol,
    write_csv,
    write_influx1,
    write_parquet,
)
from tests.support.scripted_http import Reply, Request, ScriptedHttpServer
from tests.support.servers import InfluxDB, free_port

T0_US = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
CHANNELS = ("Accelerometer1RMS", "Volume Flow RateRMS")
IDS = ["synthetic-skab-mode,1-7-0", "synthetic-skab-mode,1-7-1"]
STAMPS = ["2023-11-14T22:13:20.000000Z", "2023-11-14T22:13:20.250000Z", "2023-11-14T22:13:20.500000Z"]
COLUMNS = ["series", "timestamp", *CHANNELS, "failure_mode", "synthetic", "generator_version", "model"]
CREATED = Reply(200, '{"results":[{"statement_id":0}]}')
_measurements = itertools.count()


def _batch(**overrides: Any) -> SyntheticBatch:
    """2 series x 3 steps x 2 channels; value = series + step / 4 + channel / 8 (exact in binary)."""
    s, k, c = np.meshgrid(np.arange(2), np.arange(3), np.arange(2), indexing="ij")
    fields: dict[str, Any] = {
        "values": (s + k / 4 + c / 8).astype(np.float64),
        "channels": CHANNELS,
        "failure_mode": "mode,1",
        "generator_version": "edgegen-gen/1",
        "model_name": "skab",
        "start_us": T0_US,
        "period_us": 250_000,
        "seed": 7,
    }
    return SyntheticBatch(**{**fields, **overrides})


def _expected_rows() -> list[tuple[Any, ...]]:
    return [
        (IDS[s], STAMPS[k], s + k / 4, s + k / 4 + 1 / 8, "mode,1", True, "edgegen-gen/1", "skab")
        for s in range(2)
        for k in range(3)
    ]


def test_csv_is_one_labelled_row_per_series_and_step(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert write_csv(_batch(), path) == 6
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    labels = '"mode,1",true,edgegen-gen/1,skab'
    assert lines[1] == f'"synthetic-skab-mode,1-7-0",2023-11-14T22:13:20.000000Z,0.0,0.125,{labels}'
    assert lines[6] == f'"synthetic-skab-mode,1-7-1",2023-11-14T22:13:20.500000Z,1.5,1.625,{labels}'
    frame = pd.read_csv(path)
    assert list(frame.columns) == COLUMNS
    assert [tuple(r) for r in frame.itertuples(index=False)] == _expected_rows()


def test_parquet_round_trip_keeps_utc_microsecond_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    assert write_parquet(_batch(), path) == 6
    arrow = pd.read_parquet(path, dtype_backend="pyarrow")
    assert str(arrow["timestamp"].dtype) == "timestamp[us, tz=UTC][pyarrow]"
    assert str(arrow["synthetic"].dtype) == "bool[pyarrow]"
    frame = pd.read_parquet(path)
    assert list(frame.columns) == COLUMNS
    assert frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist() == STAMPS * 2
    assert [int(t.value) // 1000 for t in frame["timestamp"]] == [T0_US + 250_000 * k for k in range(3)] * 2
    rows = [(r[0], STAMPS[i % 3], *r[2:]) for i, r in enumerate(frame.itertuples(index=False))]
    assert rows == _expected_rows()


def test_line_protocol_escapes_spaces_and_commas_and_sorts_tags() -> None:
    tags = "failure_mode=mode\\,1,generator=edgegen-gen/1,model=skab"
    fields = "Accelerometer1RMS={},Volume\\ Flow\\ RateRMS={}"
    assert to_line_protocol(_batch()) == [
        f"synthetic,{tags},series=synthetic-skab-mode\\,1-7-{s},synthetic=true {fields.format(a, b)} {ns}"
        for s, a, b in [(0, "0.0", "0.125"), (1, "1.0", "1.125")]
        for a, b, ns in [
            (a, b, "1700000000000000000"),
            (str(float(a) + 0.25), str(float(b) + 0.25), "1700000000250000000"),
            (str(float(a) + 0.5), str(float(b) + 0.5), "1700000000500000000"),
        ]
    ]
    [line] = to_line_protocol(_batch(values=np.array([[[1e-7, -2.5e300]]]), channels=("a=b", "c")), "m x,y")
    assert line.startswith("m\\ x\\,y,failure_mode=")
    assert line.endswith(" a\\=b=1e-07,c=-2.5e+300 1700000000000000000")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"failure_mode": "a\\b"}, "backslash"),
        ({"failure_mode": "two\nlines"}, "newline"),
        ({"model_name": ""}, "empty"),
        ({"channels": ("time", "x")}, "clash"),
        ({"channels": ("series", "x")}, "clash"),
        ({"values": np.full((1, 1, 2), np.nan)}, "non-finite"),
    ],
)
def test_unwritable_lines_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(OutputError, match=message) as caught:
        to_line_protocol(_batch(**overrides))
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"period_us": 0}, "period_us"),
        ({"channels": ("a",)}, "2 value channels but 1"),
        ({"channels": ("a", "a")}, "duplicate"),
        ({"values": np.zeros((2, 3))}, "shape"),
    ],
)
def test_inconsistent_batches_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(OutputError, match=message):
        _batch(**overrides)


def test_label_column_clash_is_refused_for_tables(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="clash"):
        write_csv(_batch(channels=("model", "x")), tmp_path / "x.csv")


# ---- a reference parser: what the line-protocol spec says a reader recovers ----------------------------------


def _split(text: str, sep: str) -> list[str]:
    """Split on unescaped ``sep`` (inputs have no literal backslashes, so every backslash escapes)."""
    parts, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\":
            current += text[i : i + 2]
            i += 2
            continue
        if text[i] == sep:
            parts.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    return [*parts, current]


def _unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def _parse(line: str) -> tuple[str, dict[str, str], dict[str, float], int]:
    head, fields, ts = _split(line, " ")
    measurement, *tags = _split(head, ",")
    tag_map: dict[str, str] = {}
    for t in tags:
        k, v = _split(t, "=")
        tag_map[_unescape(k)] = _unescape(v)
    field_map: dict[str, float] = {}
    for f in _split(fields, ","):
        k, v = _split(f, "=")
        field_map[_unescape(k)] = float(v)
    return _unescape(measurement), tag_map, field_map, int(ts)


NAME = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\\"), min_size=1, max_size=10
)
RESERVED = RESERVED_COLUMNS | RESERVED_FIELD_KEYS  # refused by design, tested above
CHANNEL_NAMES = st.lists(NAME.filter(lambda n: n not in RESERVED), min_size=1, max_size=3, unique=True)


@st.composite
def batches(draw: st.DrawFn) -> SyntheticBatch:
    channels = tuple(draw(CHANNEL_NAMES))
    n, length = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    values = draw(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False),
            min_size=n * length * len(channels),
            max_size=n * length * len(channels),
        )
    )
    return SyntheticBatch(
        values=np.array(values, dtype=np.float64).reshape(n, length, len(channels)),
        channels=channels,
        failure_mode=draw(NAME),
        generator_version=draw(NAME),
        model_name=draw(NAME),
        start_us=draw(st.integers(0, 4_000_000_000_000_000)),
        period_us=draw(st.integers(1, 10**9)),
        seed=draw(st.integers(0, 2**31)),
    )


def _expected_points(batch: SyntheticBatch) -> dict[tuple[str, int], dict[str, float]]:
    return {
        (sid, int(t) * 1000): dict(zip(batch.channels, batch.values[s, k].tolist(), strict=True))
        for s, sid in enumerate(batch.series_ids())
        for k, t in enumerate(batch.timestamps_us())
    }


@given(batches())
@settings(max_examples=200, deadline=None)
def test_escaping_survives_random_names_and_values(batch: SyntheticBatch) -> None:
    seen: dict[tuple[str, int], dict[str, float]] = {}
    for line in to_line_protocol(batch):
        measurement, tags, fields, ts = _parse(line)
        assert measurement == "synthetic"
        assert tags == {
            "failure_mode": batch.failure_mode,
            "generator": batch.generator_version,
            "model": batch.model_name,
            "series": tags["series"],
            "synthetic": "true",
        }
        seen[(tags["series"], ts)] = fields
    assert seen == _expected_points(batch)  # every (series, step) once: nothing overwrites anything


# ---- HTTP: requests and the classification of answers --------------------------------------------------------


async def _scripted(replies: list[Reply], **kwargs: Any) -> tuple[list[Request], int | OutputError]:
    async with ScriptedHttpServer(replies) as server:
        try:
            outcome: int | OutputError = await write_influx1(_batch(), server.url, "plant", timeout_s=5, **kwargs)
        except OutputError as exc:
            outcome = exc
        return server.requests, outcome


def test_requests_create_the_database_then_write_in_chunks() -> None:
    requests, outcome = asyncio.run(
        _scripted([CREATED, Reply(204), Reply(204), Reply(204)], username="gen", password="pw", batch_lines=2)
    )
    assert outcome == 6
    create, *writes = requests
    assert (create.method, create.path) == ("POST", "/query")
    assert create.query == {"q": 'CREATE DATABASE "plant"', "u": "gen", "p": "pw"}
    assert [(w.method, w.path) for w in writes] == [("POST", "/write")] * 3
    assert all(w.query == {"db": "plant", "precision": "ns", "u": "gen", "p": "pw"} for w in writes)
    assert [w.body.decode().split("\n") for w in writes] == [
        to_line_protocol(_batch())[i : i + 2] for i in (0, 2, 4)
    ]


@pytest.mark.parametrize(
    ("replies", "status", "retryable"),
    [
        ([CREATED, Reply(400, '{"error":"unable to parse"}')], 400, False),
        ([CREATED, Reply(503, "overloaded")], 503, True),
        ([Reply(401, '{"error":"authorization failed"}')], 401, False),
        ([CREATED, Reply(429, "slow down")], 429, True),
        ([CREATED, Reply(500, "boom")], 500, True),
    ],
)
def test_non_2xx_is_a_typed_error(replies: list[Reply], status: int, retryable: bool) -> None:
    requests, outcome = asyncio.run(_scripted(replies))
    assert len(requests) == len(replies)  # no retry behind the caller's back
    assert isinstance(outcome, OutputError)
    assert isinstance(outcome, ModelsError)
    assert (outcome.status, outcome.retryable) == (status, retryable)
    assert f"HTTP {status}" in str(outcome)


def test_statement_error_on_create_is_not_retryable() -> None:
    reply = Reply(200, '{"results":[{"statement_id":0,"error":"requires admin privilege"}]}')
    requests, outcome = asyncio.run(_scripted([reply]))
    assert len(requests) == 1
    assert isinstance(outcome, OutputError)
    assert outcome.retryable is False
    assert "requires admin privilege" in str(outcome)


def test_refused_connection_is_retryable() -> None:
    with pytest.raises(OutputError) as caught:
        asyncio.run(write_influx1(_batch(), f"http://127.0.0.1:{free_port()}", "plant", timeout_s=2))
    assert caught.value.retryable is True


def test_silent_server_times_out_retryably() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(OutputError) as caught:
            asyncio.run(write_influx1(_batch(), url, "plant", timeout_s=0.3))
    assert caught.value.retryable is True
    assert "Timeout" in str(caught.value)


# ---- a real InfluxDB 1.6.7 -----------------------------------------------------------------------------------


def _select(server: InfluxDB, database: str, q: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"db": database, "q": q, "epoch": "ns"})
    with urllib.request.urlopen(f"{server.url}/query?{query}", timeout=10) as response:
        result = json.loads(response.read())["results"][0]
    assert "error" not in result, result
    return [
        dict(zip(s["columns"], row, strict=True)) | s.get("tags", {})
        for s in result.get("series", [])
        for row in s["values"]
    ]


@pytest.mark.influxdb
def test_points_read_back_exactly_from_influxdb(influxdb: InfluxDB, influx_database: str) -> None:
    written = asyncio.run(write_influx1(_batch(), influxdb.url, influx_database, batch_lines=4))
    assert written == 6
    rows = _select(influxdb, influx_database, "SELECT * FROM synthetic")
    expected = [
        {
            "time": (T0_US + 250_000 * k) * 1000,
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
    assert rows == expected
    counts = _select(
        influxdb, influx_database, 'SELECT count("Accelerometer1RMS") FROM synthetic GROUP BY "series"'
    )
    assert {(r["series"], r["count"]) for r in counts} == {(IDS[0], 3), (IDS[1], 3)}
    assert asyncio.run(write_influx1(_batch(), influxdb.url, influx_database)) == 6  # rewrites are idempotent
    assert len(_select(influxdb, influx_database, "SELECT * FROM synthetic")) == 6


@pytest.mark.influxdb
@given(batches())
@settings(max_examples=12, deadline=None)
def test_random_names_and_values_survive_real_influxdb(influxdb: InfluxDB, batch: SyntheticBatch) -> None:
    measurement = f"synthetic{next(_measurements)}"  # one database, a measurement per example: cheaper
    written = asyncio.run(write_influx1(batch, influxdb.url, "synthprop", measurement=measurement))
    assert written == batch.n_series * batch.length
    rows = _select(influxdb, "synthprop", f'SELECT * FROM "{measurement}"')
    # Go prints integral doubles without an exponent; float() reads them back to the same double
    got = {(r["series"], r["time"]): {c: float(r[c]) for c in batch.channels} for r in rows}
    assert got == _expected_points(batch)
    labels = {(r["failure_mode"], r["generator"], r["model"], r["synthetic"]) for r in rows}
    assert labels == {(batch.failure_mode, batch.generator_version, batch.model_name, "true")}
