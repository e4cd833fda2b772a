"""Labelled synthetic time series and their files: the output side of ``edgegen generate``.

Every row carries its labels (``synthetic``, failure mode, generator version, model) so generated data can never
be mistaken for measured data once it sits next to it. Storing a batch the way the gateway stores data (SQLite,
InfluxDB) is the gateway's business: ``edgegen/gateway/synthetic.py``, with the same labels as tags.

Layout, shared by CSV and Parquet, one row per (series, step)::

    series, timestamp, <channels...>, failure_mode, synthetic, generator_version, model

Series ids are ``synthetic-<model>-<mode>-<seed>-<i>`` (``i`` counts from 0), verbatim, unsanitised. Step ``k``
is stamped ``start_us + k * period_us``. In CSV the timestamp is ISO-8601 UTC, always with six fractional digits
and a ``Z`` (``2024-01-01T00:00:00.000000Z``), so it sorts as text and parses without guessing; ``synthetic`` is
written ``true``. Parquet stores the timestamp as ``timestamp[us, tz=UTC]`` and ``synthetic`` as a boolean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from edgegen.models.errors import OutputError

LABEL_COLUMNS = ("failure_mode", "synthetic", "generator_version", "model")
RESERVED_COLUMNS = frozenset({"series", "timestamp", *LABEL_COLUMNS})
CSV_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, eq=False)  # eq=False: ndarray equality is elementwise, not a bool
class SyntheticBatch:
    """Generated series of one failure mode, in data units, with what is needed to label and timestamp them."""

    values: npt.NDArray[np.float64]  # (n_series, length, channels), data units
    channels: tuple[str, ...]
    failure_mode: str  # e.g. "normal", "valve1", "IDV(4)"
    generator_version: str  # e.g. "edgegen-gen/1"
    model_name: str  # e.g. "skab"
    start_us: int  # timestamp of step 0 (µs since epoch)
    period_us: int  # sampling period
    seed: int

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise OutputError(f"values must be (n_series, length, channels), got shape {self.values.shape}")
        if self.values.shape[2] != len(self.channels):
            raise OutputError(f"{self.values.shape[2]} value channels but {len(self.channels)} channel names")
        if len(set(self.channels)) != len(self.channels):
            raise OutputError(f"duplicate channel names in {self.channels}")
        if self.period_us <= 0:  # a zero period would stamp every step alike, and each would overwrite the last
            raise OutputError(f"period_us must be positive, got {self.period_us}")

    @property
    def n_series(self) -> int:
        return int(self.values.shape[0])

    @property
    def length(self) -> int:
        return int(self.values.shape[1])

    def series_ids(self) -> list[str]:
        prefix = f"synthetic-{self.model_name}-{self.failure_mode}-{self.seed}"
        return [f"{prefix}-{i}" for i in range(self.n_series)]

    def timestamps_us(self) -> npt.NDArray[np.int64]:
        return self.start_us + self.period_us * np.arange(self.length, dtype=np.int64)


def to_frame(batch: SyntheticBatch) -> pd.DataFrame:
    """The shared table: one row per (series, step), timestamps tz-aware UTC at microsecond resolution."""
    clash = RESERVED_COLUMNS.intersection(batch.channels)
    if clash:
        raise OutputError(f"channel names {sorted(clash)} clash with the label columns")
    n, length = batch.n_series, batch.length
    stamps = pd.DatetimeIndex(np.tile(batch.timestamps_us(), n).astype("datetime64[us]")).tz_localize("UTC")
    columns: dict[str, Any] = {
        "series": np.repeat(np.array(batch.series_ids(), dtype=object), length),
        "timestamp": stamps,
    }
    flat = np.asarray(batch.values, dtype=np.float64).reshape(n * length, len(batch.channels))
    for c, name in enumerate(batch.channels):
        columns[name] = flat[:, c]
    columns["failure_mode"] = batch.failure_mode
    columns["synthetic"] = True
    columns["generator_version"] = batch.generator_version
    columns["model"] = batch.model_name
    return pd.DataFrame(columns, index=pd.RangeIndex(n * length))


def write_csv(batch: SyntheticBatch, path: Path | str) -> int:
    """Write the table as CSV (floats as shortest round-trip decimals); return the number of rows."""
    frame = to_frame(batch)
    frame["synthetic"] = "true"  # lower case: what non-Python readers (and InfluxDB, Grafana) expect
    frame.to_csv(path, index=False, date_format=CSV_TIMESTAMP_FORMAT)
    return len(frame)


def write_parquet(batch: SyntheticBatch, path: Path | str) -> int:
    """Write the table as Parquet (pyarrow), timestamps as ``timestamp[us, tz=UTC]``; return the number of rows."""
    frame = to_frame(batch)
    frame.to_parquet(path, engine="pyarrow", index=False, coerce_timestamps="us", allow_truncated_timestamps=False)
    return len(frame)


__all__ = [
    "SyntheticBatch",
    "to_frame",
    "write_csv",
    "write_parquet",
]
