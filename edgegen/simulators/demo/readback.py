"""Read back what the gateway stored for the demo's report: samples, scores and forecasts per node, as tables.

The report is built from storage, not from the gateway's memory, so it shows what a user would query: SQLite
(``points`` and ``derived`` tables, docs/storage.md) or InfluxDB 1.x (InfluxQL over ``/query``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pandas as pd

from edgegen.gateway.config import StorageSettings
from edgegen.gateway.storage.errors import StorageError
from edgegen.simulators.errors import SimulatorError

if TYPE_CHECKING:
    from edgegen.gateway.storage.influx1 import Influx1Storage


class ReadBackError(SimulatorError):
    """Storage could not be read back for the report (missing file, refused query): may pass on retry."""

    retryable = True


@dataclass
class NodeOutputs:
    """One node's stored stream: each table indexed by timestamp (µs), one column per field."""

    samples: pd.DataFrame
    scores: pd.DataFrame  # score, smoothed, flag, p_anomaly
    forecasts: dict[int, pd.DataFrame] = field(default_factory=dict)  # horizon -> c{k}_mean, _lo80, ... _hi95


def _wide(rows: list[tuple[int, str, float]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=["ts_us", "field", "value"])
    wide = frame.pivot_table(index="ts_us", columns="field", values="value", aggfunc="first").sort_index()
    wide.columns.name = None
    return wide


def _tags(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def read_sqlite(path: Path, site: str, stream: str, nodes: list[str]) -> dict[str, NodeOutputs]:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            points = conn.execute(
                "SELECT node, ts_us, field, value FROM points WHERE measurement = 'samples' AND site = ?"
                " AND stream = ?",
                (site, stream),
            ).fetchall()
            derived = conn.execute(
                "SELECT measurement, tags, ts_us, field, value FROM derived"
                " WHERE measurement IN ('scores', 'forecasts')"
            ).fetchall()
    except sqlite3.Error as exc:
        raise ReadBackError(f"{path}: {exc}") from exc
    samples: dict[str, list[tuple[int, str, float]]] = {n: [] for n in nodes}
    for node, ts, name, value in points:
        samples.setdefault(node, []).append((ts, name, value))
    scores: dict[str, list[tuple[int, str, float]]] = {n: [] for n in nodes}
    forecasts: dict[tuple[str, int], list[tuple[int, str, float]]] = {}
    for measurement, tag_text, ts, name, value in derived:
        tags = _tags(tag_text)
        if tags.get("site") != site or tags.get("stream") != stream:
            continue
        node = tags.get("node", "")
        if measurement == "scores":
            scores.setdefault(node, []).append((ts, name, value))
        else:
            forecasts.setdefault((node, int(tags["horizon"])), []).append((ts, name, value))
    return {
        node: NodeOutputs(
            _wide(samples.get(node, [])),
            _wide(scores.get(node, [])),
            {h: _wide(rows) for (n, h), rows in forecasts.items() if n == node},
        )
        for node in nodes
    }


async def read_influx1(
    settings: StorageSettings, site: str, stream: str, nodes: list[str]
) -> dict[str, NodeOutputs]:
    from edgegen.gateway.storage.influx1 import Influx1Storage

    storage = Influx1Storage(
        settings.influx_url, settings.database, timeout_s=settings.timeout_s, create_database=False
    )
    await storage.open()
    try:
        out = {}
        for node in nodes:
            where = f"WHERE site = '{site}' AND node = '{node}' AND stream = '{stream}'"
            samples = await _influx_table(storage, f"SELECT * FROM samples {where}")
            scores = await _influx_table(storage, f"SELECT score, smoothed, flag, p_anomaly FROM scores {where}")
            forecasts = {}
            for horizon in await _horizons(storage, where):
                forecasts[horizon] = await _influx_table(
                    storage, f"SELECT * FROM forecasts {where} AND horizon = '{horizon}'"
                )
            out[node] = NodeOutputs(samples, scores, forecasts)
        return out
    except (aiohttp.ClientError, TimeoutError, StorageError, KeyError, ValueError) as exc:
        raise ReadBackError(f"reading back from {settings.influx_url}: {exc}") from exc
    finally:
        await storage.close()


async def _horizons(storage: Influx1Storage, where: str) -> list[int]:
    results = await storage.query(f'SHOW TAG VALUES FROM forecasts WITH KEY = "horizon" {where}')
    series = results[0].get("series", [])
    return sorted(int(v[1]) for s in series for v in s["values"])


async def _influx_table(storage: Influx1Storage, query: str) -> pd.DataFrame:
    results = await storage.query(query + " ORDER BY time")
    series = results[0].get("series", [])
    if not series:
        return pd.DataFrame()
    s = series[0]
    frame = pd.DataFrame(s["values"], columns=s["columns"])
    frame["time"] = frame["time"].astype("int64")  # the storage queries with epoch=u: integer microseconds
    frame = frame.set_index("time").select_dtypes("number")
    frame.index.name = "ts_us"
    return frame
