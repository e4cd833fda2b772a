"""Recordings for ``edgegen replay``: SKAB, Tennessee Eastman, timestamped CSV, Parquet, InfluxDB query exports.

Every loader returns models.data.series.Series; a directory gives one recording per file, in name order.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgegen.models.data import skab, tables, tep
from edgegen.models.data.series import Series
from edgegen.models.errors import DataError

FORMATS = ("auto", "skab", "tep", "csv", "parquet", "influx")
_TEP_NAME = re.compile(r"d(\d\d)(_te)?$")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".dat": "tep", ".json": "influx"}


def _detect(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.readline()
        return "skab" if head.startswith("datetime;") else "csv"
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: cannot tell the format from the suffix; pass --format")
    return kind


def _one(path: Path, fmt: str) -> list[Series]:
    kind = _detect(path) if fmt == "auto" else fmt
    if kind == "skab":
        return [skab.read_file(path)]
    if kind == "tep":
        match = _TEP_NAME.match(path.stem)
        if match is None:
            raise DataError(f"{path}: Tennessee Eastman files are named dNN.dat or dNN_te.dat")
        return [tep.run(path.parent, int(match[1]), test=bool(match[2]))]
    if kind == "parquet":
        return [tables.parquet_file(path)]
    if kind == "influx":
        return tables.influx_export(path)
    return [tables.csv_file(path)]


def load(path: Path, fmt: str = "auto") -> list[Series]:
    """The recordings in ``path`` (a file, or every data file under a directory)."""
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
        if not files:
            raise DataError(f"{path}: no .csv, .parquet, .dat or .json files")
        return [s for f in files for s in _one(f, fmt)]
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    return _one(path, fmt)
