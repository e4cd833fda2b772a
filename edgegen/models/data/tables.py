"""Generic sources: a timestamped CSV, InfluxDB query exports (1.x CSV and JSON, 2.x annotated CSV), and the
SQLite store the gateway writes (what the simulators produce)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from edgegen.models.data.series import Series
from edgegen.models.errors import DataError

TIME_NAMES = ("timestamp", "time", "datetime", "date", "ts", "_time")


def _timestamps_us(column: pd.Series, where: str) -> npt.NDArray[np.int64]:
    """Datetimes (ISO strings) or numbers (epoch seconds, ms, us or ns by magnitude) to int64 microseconds."""
    if pd.api.types.is_numeric_dtype(column):
        raw = column.to_numpy(dtype=np.float64)
        magnitude = np.nanmax(np.abs(raw)) if len(raw) else 0
        factor = 1e6 if magnitude < 1e11 else 1e3 if magnitude < 1e14 else 1.0 if magnitude < 1e17 else 1e-3
        return np.round(raw * factor).astype(np.int64)
    try:
        stamps = pd.to_datetime(column, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: timestamps not readable: {exc}") from exc
    return stamps.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64)


def _from_frame(frame: pd.DataFrame, name: str, where: str, label: str | None = "anomaly") -> Series:
    time_col = next((c for c in frame.columns if str(c).strip().lower() in TIME_NAMES), frame.columns[0])
    timestamps = _timestamps_us(frame[time_col], where)
    rest = frame.drop(columns=[time_col])
    anomaly = None
    if label is not None and label in rest.columns:
        anomaly = rest.pop(label).fillna(0).to_numpy().astype(np.int8)
    numeric = rest.select_dtypes(include=[np.number])
    if numeric.shape[1] == 0:
        raise DataError(f"{where}: no numeric columns besides the timestamps")
    order = np.argsort(timestamps, kind="stable")
    timestamps = timestamps[order]
    keep = np.r_[True, np.diff(timestamps) > 0]  # drop repeated timestamps: the first value stays
    idx = order[keep]
    values = numeric.to_numpy(dtype=np.float64)[idx]
    return Series(
        name,
        timestamps[keep],
        values,
        tuple(str(c) for c in numeric.columns),
        None if anomaly is None else anomaly[idx],
    )


def csv_file(path: Path, sep: str | None = None) -> Series:
    """A timestamped CSV: a time column (named like 'timestamp' or 'time', else the first) and numeric columns;
    an 'anomaly' column, if present, becomes the labels."""
    try:
        frame = pd.read_csv(path, sep=sep, engine="python")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: {exc}") from exc
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected a time column and at least one numeric column")
    return _from_frame(frame, path.stem, str(path))


def parquet_file(path: Path) -> Series:
    """A Parquet table laid out like csv_file's CSV."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: {exc}") from exc
    if frame.shape[1] < 2:
        raise DataError(f"{path}: expected a time column and at least one numeric column")
    return _from_frame(frame, path.stem, str(path))


def influx_export(path: Path) -> list[Series]:
    """An InfluxDB query export: 1.x `influx -format csv` (name,tags,time,fields), 1.x JSON (/query results) or
    2.x annotated CSV (#datatype lines; _time, _field, _value). One Series per measurement and tag set."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return _influx1_json(json.loads(text), path)
    if text.startswith("#"):
        return _influx2_csv(path)
    frame = pd.read_csv(path)
    if "name" not in frame.columns or "time" not in frame.columns:
        raise DataError(f"{path}: not an InfluxDB CSV export (no name/time columns)")
    out = []
    fields = [c for c in frame.columns if c not in ("name", "tags", "time")]
    for (name, tags), group in frame.groupby(["name", frame.get("tags", pd.Series([""] * len(frame)))], sort=True):
        label = f"{name},{tags}" if tags else str(name)
        out.append(_from_frame(group[["time", *fields]].dropna(axis=1, how="all"), label, str(path)))
    return out


def _influx1_json(doc: dict, path: Path) -> list[Series]:  # type: ignore[type-arg]
    out = []
    for result in doc.get("results", []):
        for series in result.get("series", []):
            frame = pd.DataFrame(series["values"], columns=series["columns"])
            tags = ",".join(f"{k}={v}" for k, v in sorted(series.get("tags", {}).items()))
            label = f"{series['name']},{tags}" if tags else series["name"]
            out.append(_from_frame(frame, label, str(path)))
    if not out:
        raise DataError(f"{path}: the JSON export holds no series")
    return out


def _influx2_csv(path: Path) -> list[Series]:
    frame = pd.read_csv(path, comment="#")
    frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]
    need = {"_time", "_field", "_value", "_measurement"}
    if not need <= set(frame.columns):
        raise DataError(f"{path}: annotated CSV without {sorted(need - set(frame.columns))}")
    tag_cols = [c for c in frame.columns if not c.startswith("_") and c not in ("result", "table")]
    out = []
    for key, group in frame.groupby(["_measurement", *tag_cols], sort=True):
        parts = key if isinstance(key, tuple) else (key,)
        label = ",".join([str(parts[0]), *(f"{c}={v}" for c, v in zip(tag_cols, parts[1:], strict=True))])
        wide = group.pivot_table(index="_time", columns="_field", values="_value", aggfunc="first").reset_index()
        wide.columns.name = None
        out.append(_from_frame(wide, label, str(path)))
    return out


def gateway_store(path: Path, site: str | None = None) -> list[Series]:
    """What the gateway stored in SQLite (storage.kind = sqlite): one Series per node and stream."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            query = "SELECT site, node, stream, ts_us, field, value FROM points WHERE measurement = 'samples'"
            rows = conn.execute(query + (" AND site = ?" if site else ""), (site,) if site else ()).fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"{path}: {exc}") from exc
    if not rows:
        raise DataError(f"{path}: no stored samples")
    frame = pd.DataFrame(rows, columns=["site", "node", "stream", "time", "field", "value"])
    out = []
    for (s, node, stream), group in frame.groupby(["site", "node", "stream"], sort=True):
        wide = group.pivot_table(index="time", columns="field", values="value", aggfunc="first")
        wide = wide[sorted(wide.columns, key=lambda f: int(str(f)[1:]))].reset_index()  # c0, c1, ..., c10
        wide.columns.name = None
        out.append(_from_frame(wide, f"{s}/{node}/{stream}", str(path)))
    return out
