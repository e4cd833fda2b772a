"""Labelled synthetic series and their files, CSV and Parquet. Storing them (SQLite, InfluxDB) goes through the
gateway's storage: tests/gateway/test_synthetic_storage.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from edgegen.models.errors import OutputError
from edgegen.models.synthetic_out import SyntheticBatch, write_csv, write_parquet

T0_US = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
CHANNELS = ("Accelerometer1RMS", "Volume Flow RateRMS")
IDS = ["synthetic-skab-mode,1-7-0", "synthetic-skab-mode,1-7-1"]
STAMPS = ["2023-11-14T22:13:20.000000Z", "2023-11-14T22:13:20.250000Z", "2023-11-14T22:13:20.500000Z"]
COLUMNS = ["series", "timestamp", *CHANNELS, "failure_mode", "synthetic", "generator_version", "model"]


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
