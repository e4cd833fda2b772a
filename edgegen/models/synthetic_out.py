"""Writers for labelled synthetic time series: the output side of ``edgegen generate``.

Every row or point carries its labels (``synthetic``, failure mode, generator version, model) so generated data
can never be mistaken for measured data once it sits next to it in a file or a database.

Layout, shared by CSV and Parquet, one row per (series, step)::

    series, timestamp, <channels...>, failure_mode, synthetic, generator_version, model

Series ids are ``synthetic-<model>-<mode>-<seed>-<i>`` (``i`` counts from 0), verbatim, unsanitised. Step ``k``
is stamped ``start_us + k * period_us``. In CSV the timestamp is ISO-8601 UTC, always with six fractional digits
and a ``Z`` (``2024-01-01T00:00:00.000000Z``), so it sorts as text and parses without guessing; ``synthetic`` is
written ``true``. Parquet stores the timestamp as ``timestamp[us, tz=UTC]`` and ``synthetic`` as a boolean.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from edgegen.gateway.storage import lineprotocol
from edgegen.gateway.storage.errors import LineProtocolError
from edgegen.models.errors import OutputError

LABEL_COLUMNS = ("failure_mode", "synthetic", "generator_version", "model")
RESERVED_COLUMNS = frozenset({"series", "timestamp", *LABEL_COLUMNS})
CSV_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Tag keys in byte order, as InfluxDB advises (it sorts them anyway; sorted input skips that work).
TAG_KEYS = ("failure_mode", "generator", "model", "series", "synthetic")
# Field keys InfluxDB 1.x refuses ("time") or would make ambiguous next to a tag of the same name.
RESERVED_FIELD_KEYS = frozenset({"time", *TAG_KEYS})


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


# ---- InfluxDB line protocol ----------------------------------------------------------------------------------


def _checked(text: str, what: str) -> str:
    """Refuse any backslash, on top of what the gateway's line protocol refuses: next to an escaped character
    the 1.x and 2.x parsers read it differently, and generated labels never need one."""
    if "\\" in text:
        raise OutputError(f"backslash in {what} {text!r}: InfluxDB 1.x and 2.x read it differently")
    return text


def _escaped(encode: Callable[[], str]) -> str:
    """The gateway's line-protocol escaping, its refusals as this package's error."""
    try:
        return encode()
    except LineProtocolError as exc:
        raise OutputError(str(exc)) from exc


def _key(text: str, what: str) -> str:
    return _escaped(lambda: lineprotocol.key(_checked(text, what), what))


def _measurement(name: str) -> str:
    return _escaped(lambda: lineprotocol.measurement(_checked(name, "measurement")))


def _float(value: float) -> str:
    return _escaped(lambda: lineprotocol.float_value(value))


def _iter_lines(batch: SyntheticBatch, measurement: str) -> Iterator[str]:
    clash = RESERVED_FIELD_KEYS.intersection(batch.channels)
    if clash:
        raise OutputError(f"channel names {sorted(clash)} clash with InfluxDB's time or the label tags")
    head = _measurement(measurement)
    fixed = {
        "failure_mode": _key(batch.failure_mode, "failure mode"),
        "generator": _key(batch.generator_version, "generator version"),
        "model": _key(batch.model_name, "model name"),
        "synthetic": "true",
    }
    keys = [_key(c, "channel name") for c in batch.channels]
    stamps_ns = [int(t) * 1000 for t in batch.timestamps_us()]
    for series_id, series in zip(batch.series_ids(), batch.values, strict=True):
        tags = {**fixed, "series": _key(series_id, "series id")}
        prefix = head + "".join(f",{k}={tags[k]}" for k in TAG_KEYS)
        for row, ts in zip(series.tolist(), stamps_ns, strict=True):
            fields = ",".join(f"{k}={_float(v)}" for k, v in zip(keys, row, strict=True))
            yield f"{prefix} {fields} {ts}"


def to_line_protocol(batch: SyntheticBatch, measurement: str = "synthetic") -> list[str]:
    """One line per (series, step), nanosecond timestamps; the ``series`` tag keeps series from overwriting."""
    return list(_iter_lines(batch, measurement))


# ---- InfluxDB 1.x over HTTP ------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500  # overload or server trouble may pass; anything else will not


async def write_influx1(
    batch: SyntheticBatch,
    url: str,
    database: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 10,
    batch_lines: int = 5000,
    measurement: str = "synthetic",
) -> int:
    """Create ``database`` and write the batch to InfluxDB 1.x via ``/write``; return the number of points.

    influxdb-client speaks only the 2.x API, so this talks HTTP with aiohttp (which it brings). Each request is
    bounded by ``timeout_s``. Points are idempotent, so retrying after a retryable :class:`OutputError` is safe.
    """
    import aiohttp

    if batch_lines <= 0:
        raise OutputError(f"batch_lines must be positive, got {batch_lines}")
    lines = to_line_protocol(batch, measurement)  # refuse unwritable names before touching the server
    base = url.rstrip("/")
    auth = {"u": username, "p": password or ""} if username else {}

    async def request(session: aiohttp.ClientSession, path: str, params: dict[str, str], data: bytes) -> str:
        try:
            async with session.post(base + path, params=params, data=data) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OutputError(f"InfluxDB at {base}: {exc!r}", retryable=True) from exc
        if not 200 <= response.status < 300:
            raise OutputError(
                f"InfluxDB at {base}{path}: HTTP {response.status}: {text.strip()[:500]}",
                retryable=_retryable_status(response.status),
                status=response.status,
            )
        return text

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        text = await request(session, "/query", {"q": f"CREATE DATABASE {_ident(database)}", **auth}, b"")
        for result in _json(text).get("results", []):
            if "error" in result:
                raise OutputError(f"InfluxDB at {base}: CREATE DATABASE: {result['error']}")
        params = {"db": database, "precision": "ns", **auth}
        for chunk in lineprotocol.chunks(lines, batch_lines):
            await request(session, "/write", params, "\n".join(chunk).encode())
    return len(lines)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise OutputError(f"InfluxDB answered with something other than JSON: {text[:200]!r}") from exc
    return value if isinstance(value, dict) else {}


__all__ = [
    "SyntheticBatch",
    "to_frame",
    "to_line_protocol",
    "write_csv",
    "write_influx1",
    "write_parquet",
]
