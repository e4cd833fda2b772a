"""Embedded SQLite storage: the default, so the stack runs with no database server.

One row per stored value, keyed like an InfluxDB point (measurement, tags, timestamp) plus the field, so a repeated
write replaces instead of duplicating. All SQLite calls run on one worker thread that owns the connection.
Errors map as InfluxDB's do: a file that cannot be opened or written now (locked, disk full, a directory in the
way) is :class:`StorageUnavailable`, a file that is not an SQLite database :class:`StorageRejected`, and a derived
value InfluxDB could not take either (NaN, infinity) :class:`LineProtocolError`, before anything is written.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edgegen.gateway.storage.errors import LineProtocolError, StorageRejected, StorageUnavailable
from edgegen.gateway.storage.records import Derived, Writable, points

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    stream TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    field TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (measurement, site, node, stream, ts_us, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS derived (
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,             -- every tag as k=v joined by ',' in key order (model version included)
    ts_us INTEGER NOT NULL,
    field TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (measurement, tags, ts_us, field)
) WITHOUT ROWID;
"""


class SqliteStorage:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise StorageUnavailable("SQLite storage is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgegen-sqlite")
        try:
            await self._run(self._open_sync)
        except BaseException:  # the daemon retries open(): leave no worker thread behind
            await self.close()
            raise

    def _open_sync(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it consistent
            conn.executescript(SCHEMA)
        except (OSError, sqlite3.OperationalError) as exc:
            if conn is not None:
                conn.close()
            raise StorageUnavailable(f"SQLite at {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StorageRejected(f"SQLite at {self.path}: {exc}") from exc
        self._conn = conn

    async def write(self, records: Sequence[Writable]) -> int:
        rows = [
            (p.measurement, r.site, r.node, r.stream, p.ts_us, name, value)
            for r in records
            if not isinstance(r, Derived)
            for p in points(r)
            for name, value in p.fields
        ]
        derived = [
            (p.measurement, ",".join(f"{k}={v}" for k, v in p.tags), p.ts_us, name, _finite(value))
            for r in records
            if isinstance(r, Derived)
            for p in r.points
            for name, value in p.fields
        ]
        await self._run(self._write_sync, rows, derived)
        return len(rows) + len(derived)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageUnavailable("SQLite storage is not open")
        return self._conn

    def _write_sync(self, rows: list[tuple[Any, ...]], derived: list[tuple[Any, ...]]) -> None:
        conn = self._connection()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                conn.executemany("INSERT OR REPLACE INTO derived VALUES (?, ?, ?, ?, ?)", derived)
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error: may pass
            raise StorageUnavailable(f"SQLite: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageRejected(f"SQLite: {exc}") from exc

    async def count_values(self, site: str, since_us: int = 0) -> dict[tuple[str, str], int]:
        rows = await self._run(
            self._query,
            "SELECT node, stream, count(*) FROM points WHERE measurement = 'samples' AND site = ? AND ts_us >= ?"
            " GROUP BY node, stream",
            (site, since_us),
        )
        return {(node, stream): n for node, stream, n in rows}

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, params).fetchall()

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _finite(value: float) -> float:
    """A derived value, refused as InfluxDB refuses it when it is not finite (SQLite would store NULL)."""
    if not math.isfinite(value):
        raise LineProtocolError(f"non-finite field value {value!r}")
    return value
