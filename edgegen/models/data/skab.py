"""SKAB (Skoltech Anomaly Benchmark): 8 sensors of a water-pump test bed at 1 Hz, 34 labelled experiments and
one anomaly-free run (../shared/data/skab/PROVENANCE.md).

Per file, rows 0-399 are the leaderboard's training part and the rest its test part (SKAB_TRAIN_ROWS).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edgegen.models.data.series import Series
from edgegen.models.errors import DataError

CHANNELS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
SKAB_TRAIN_ROWS = 400
GROUPS = ("valve1", "valve2", "other")


def _read(path: Path, labelled: bool) -> Series:
    try:
        frame = pd.read_csv(path, sep=";")
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: {exc}") from exc
    missing = [c for c in ("datetime", *CHANNELS) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    stamps = pd.to_datetime(frame["datetime"], format="%Y-%m-%d %H:%M:%S")
    timestamps = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64)
    values = frame[list(CHANNELS)].to_numpy(dtype=np.float64)
    anomaly = changepoint = None
    if labelled:
        anomaly = frame["anomaly"].to_numpy().astype(np.int8)
        changepoint = frame["changepoint"].to_numpy().astype(np.int8)
    rel = path.parent.name + "/" + path.stem
    return Series(rel, timestamps, values, CHANNELS, anomaly, changepoint)


def read_file(path: Path) -> Series:
    """One SKAB file: labelled unless it is the anomaly-free run."""
    return _read(path, labelled=path.parent.name != "anomaly-free")


def anomaly_free(root: Path) -> Series:
    """The anomaly-free run (9,405 rows)."""
    return _read(root / "anomaly-free" / "anomaly-free.csv", labelled=False)


def experiments(root: Path) -> list[Series]:
    """The 34 labelled experiments, in a fixed order: valve1, valve2, other, each by file number."""
    out = []
    for group in GROUPS:
        folder = root / group
        if not folder.is_dir():
            raise DataError(f"{folder}: not found (expected the SKAB data directory)")
        for path in sorted(folder.glob("*.csv"), key=lambda p: int(p.stem)):
            out.append(_read(path, labelled=True))
    if len(out) != 34:
        raise DataError(f"{root}: found {len(out)} labelled experiments, expected 34")
    return out
