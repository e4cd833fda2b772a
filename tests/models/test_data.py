"""Data loaders: the shared data sets (skipped without them), and generic sources built here or read back
from the real servers that produce them."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgegen.gateway.protocol import Encoding, Frame
from edgegen.gateway.storage.base import Storage
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.gateway.storage.records import Record
from edgegen.gateway.storage.sqlite import SqliteStorage
from edgegen.models.data import Series, skab, tables, tep
from edgegen.models.data.windows import fingerprint, normal_runs, time_split, windows
from edgegen.models.errors import DataError
from tests.support.servers import InfluxDB
from tests.support.shared_data import SHARED_DATA

SHARED = SHARED_DATA
needs_skab = pytest.mark.data("skab")
needs_tep = pytest.mark.data("tep-braatz")


@needs_skab
def test_skab_totals_match_its_provenance() -> None:
    experiments = skab.experiments(SHARED / "skab")
    free = skab.anomaly_free(SHARED / "skab")
    assert len(experiments) == 34
    assert sum(len(s) for s in experiments) + len(free) == 46_806
    assert sum(int(s.anomaly.sum()) for s in experiments if s.anomaly is not None) == 13_067
    assert sum(int(s.changepoint.sum()) for s in experiments if s.changepoint is not None) == 129
    assert experiments[0].name == "valve1/0" and experiments[-1].name == "other/14"
    assert free.channels == skab.CHANNELS and free.anomaly is None
    assert np.median(np.diff(experiments[0].timestamps_us)) == 1_000_000  # 1 Hz, with a few gaps


@needs_tep
def test_tep_runs_and_fault_labels() -> None:
    normal = tep.run(SHARED / "tep-braatz", 0, test=False)
    assert normal.values.shape == (500, 52) and int(normal.anomaly.sum()) == 0  # type: ignore[union-attr]
    faulty = tep.run(SHARED / "tep-braatz", 4, test=True)
    assert faulty.values.shape == (960, 52)
    assert faulty.anomaly is not None and faulty.anomaly[:160].sum() == 0 and faulty.anomaly[160:].all()
    assert faulty.meta == {"fault": "IDV(4)", "split": "test"}
    with pytest.raises(DataError, match=r"fault must be 0\.\.21"):
        tep.run(SHARED / "tep-braatz", 22, test=True)


def test_csv_with_iso_times_labels_unsorted_rows_and_repeats(tmp_path: Path) -> None:
    path = tmp_path / "pump.csv"
    path.write_text(
        "time,pressure,state,flow,anomaly\n"
        "2024-01-01T00:00:02Z,1.5,ok,10,0\n"
        "2024-01-01T00:00:00Z,1.0,ok,11,0\n"
        "2024-01-01T00:00:01Z,1.25,bad,12,1\n"
        "2024-01-01T00:00:01Z,9.99,bad,99,1\n"
    )
    s = tables.csv_file(path)
    t0 = 1_704_067_200_000_000
    assert s.timestamps_us.tolist() == [t0, t0 + 1_000_000, t0 + 2_000_000]
    assert s.channels == ("pressure", "flow")
    assert s.values.tolist() == [[1.0, 11.0], [1.25, 12.0], [1.5, 10.0]]  # the repeated timestamp: first row kept
    assert s.anomaly is not None and s.anomaly.tolist() == [0, 1, 0]


@pytest.mark.parametrize(("scale", "unit"), [(1, "s"), (1_000, "ms"), (1_000_000, "us"), (1_000_000_000, "ns")])
def test_csv_epoch_numbers_in_any_unit(tmp_path: Path, scale: int, unit: str) -> None:
    path = tmp_path / f"{unit}.csv"
    path.write_text("ts;a\n" + "".join(f"{(1_700_000_000 + i) * scale};{i}\n" for i in range(3)))
    s = tables.csv_file(path, sep=";")
    assert s.timestamps_us.tolist() == [(1_700_000_000 + i) * 1_000_000 for i in range(3)]


def test_csv_without_numbers_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "words.csv"
    path.write_text("time,word\n2024-01-01,x\n")
    with pytest.raises(DataError, match="no numeric columns"):
        tables.csv_file(path)


def _records() -> list[Record]:
    values = np.array([[1, -2], [3, 4], [5, 6]])
    return [
        Record.of(
            "plant", "vib", Frame("n1", 0, 1_700_000_000_000_000, 1_000, Encoding.INT16, values, (0.5, 0.25))
        ),
        Record.of(
            "plant", "vib", Frame("n2", 0, 1_700_000_000_000_000, 1_000, Encoding.INT16, -values, (1.0, 1.0))
        ),
    ]


async def _store(storage: Storage) -> None:
    await storage.open()
    try:
        await storage.write(_records())
    finally:
        await storage.close()


@pytest.mark.influxdb
def test_influxdb_1x_exports_from_a_real_server(influxdb: InfluxDB, influx_database: str, tmp_path: Path) -> None:
    asyncio.run(_store(Influx1Storage(influxdb.url, influx_database)))
    query = urllib.parse.urlencode(
        {"db": influx_database, "q": "SELECT * FROM samples GROUP BY node", "epoch": "u"}
    )
    for accept, name in (("application/json", "export.json"), ("application/csv", "export.csv")):
        request = urllib.request.Request(f"{influxdb.url}/query?{query}", headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as reply:
            (tmp_path / name).write_bytes(reply.read())
        series = {s.name: s for s in tables.influx_export(tmp_path / name)}
        assert sorted(series) == ["samples,node=n1", "samples,node=n2"]
        n1 = series["samples,node=n1"]
        assert n1.timestamps_us.tolist() == [1_700_000_000_000_000 + i * 1_000 for i in range(3)]
        assert n1.channels == ("c0", "c1")
        assert n1.values.tolist() == [[0.5, -0.5], [1.5, 1.0], [2.5, 1.5]]


def test_influxdb_2x_annotated_csv(tmp_path: Path) -> None:
    path = tmp_path / "flux.csv"
    path.write_text(
        "#group,false,false,true,true,false,false,true,true,true\n"
        "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\n"
        "#default,_result,,,,,,,,\n"
        ",result,table,_start,_stop,_time,_value,_field,_measurement,node\n"
        ",,0,2023-11-14T00:00:00Z,2023-11-15T00:00:00Z,2023-11-14T22:13:20Z,0.5,c0,samples,n1\n"
        ",,0,2023-11-14T00:00:00Z,2023-11-15T00:00:00Z,2023-11-14T22:13:21Z,1.5,c0,samples,n1\n"
        ",,1,2023-11-14T00:00:00Z,2023-11-15T00:00:00Z,2023-11-14T22:13:20Z,-0.5,c1,samples,n1\n"
        ",,1,2023-11-14T00:00:00Z,2023-11-15T00:00:00Z,2023-11-14T22:13:21Z,1.0,c1,samples,n1\n"
    )
    [s] = tables.influx_export(path)
    assert s.name == "samples,node=n1"
    assert s.timestamps_us.tolist() == [1_700_000_000_000_000, 1_700_000_001_000_000]
    assert s.values.tolist() == [[0.5, -0.5], [1.5, 1.0]]


def test_what_the_gateway_stored_in_sqlite(tmp_path: Path) -> None:
    asyncio.run(_store(SqliteStorage(tmp_path / "g.sqlite")))
    series = tables.gateway_store(tmp_path / "g.sqlite")
    assert [s.name for s in series] == ["plant/n1/vib", "plant/n2/vib"]
    assert series[1].values.tolist() == [[-1.0, 2.0], [-3.0, -4.0], [-5.0, -6.0]]


def test_time_split_windows_and_fingerprint() -> None:
    s = Series("x", np.arange(10, dtype=np.int64), np.arange(20, dtype=np.float64).reshape(10, 2), ("a", "b"))
    train, val = time_split(s, 0.7)
    assert (train.timestamps_us.max(), val.timestamps_us.min()) == (6, 7)  # nothing from the future
    w = windows(train.values, 3, 2)
    assert w.shape == (3, 3, 2) and w[1, 0].tolist() == [4.0, 5.0]
    assert fingerprint([s]) == fingerprint([Series("x", s.timestamps_us, s.values.copy(), s.channels)])
    assert fingerprint([s]) != fingerprint([Series("x", s.timestamps_us, s.values + 1e-9, s.channels)])
    assert json.dumps(fingerprint([s]))


def test_normal_runs_drop_labelled_stretches_and_short_leftovers() -> None:
    n = 20
    anomaly = np.zeros(n, dtype=np.int8)
    anomaly[5:9] = 1  # rows 0-4 (5 long), 9-16 (8 long), then 17 (1 long)
    anomaly[17] = 1
    series = Series("s", np.arange(n, dtype=np.int64), np.arange(n, dtype=np.float64)[:, None], ("x",), anomaly)
    runs = normal_runs(series, 5)
    assert [r.values[:, 0].tolist() for r in runs] == [[0, 1, 2, 3, 4], [9, 10, 11, 12, 13, 14, 15, 16]]
    assert normal_runs(series.slice(0, 4), 5) == []
    unlabelled = Series("u", np.arange(6, dtype=np.int64), np.zeros((6, 1)), ("x",))
    whole = normal_runs(unlabelled, 5)
    assert len(whole) == 1 and whole[0] is unlabelled
