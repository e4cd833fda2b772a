"""What only the SQLite backend does (the behaviour every backend shares is in test_storage_contract.py): its file,
tables and connection."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from edgegen.gateway.storage import StorageError, StorageRejected, StorageUnavailable
from edgegen.gateway.storage.sqlite import SqliteStorage
from tests.support.storage_records import record, scores


def _sqlite_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("edgegen-sqlite"))


def test_open_makes_the_directory_and_one_row_per_value_keyed_like_an_influxdb_point(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "e.sqlite"

    async def go() -> None:
        storage = SqliteStorage(path)
        await storage.open()
        try:
            await storage.write([record(values=[[1, 2]]), scores("aaaaaaaaaaaa")])
        finally:
            await storage.close()

    asyncio.run(go())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT * FROM points ORDER BY field").fetchall() == [
            ("samples", "s1", "n1", "vib", 1_700_000_000_000_000, "c0", 0.5),
            ("samples", "s1", "n1", "vib", 1_700_000_000_000_000, "c1", 0.5),
        ]
        tags = "model=skab,model_version=aaaaaaaaaaaa,node=n1,site=s1,stream=vib"  # every tag, in key order
        assert conn.execute("SELECT * FROM derived ORDER BY field").fetchall() == [
            ("scores", tags, 1_700_000_000_000_000, "flag", 0.0),
            ("scores", tags, 1_700_000_000_000_000, "score", 0.5),
        ]


@pytest.mark.parametrize("broken", ["directory", "not_a_database"])
def test_a_failed_open_leaves_no_worker_thread_behind(tmp_path: Path, broken: str) -> None:
    """The daemon retries open() while storage is unavailable: each failed attempt must clean up."""
    error: type[StorageError] = StorageUnavailable  # may pass: the daemon retries
    path = tmp_path / "file" / "e.sqlite"
    if broken == "directory":
        (tmp_path / "file").write_text("")
    else:
        error = StorageRejected  # not a database: a configuration error
        path = tmp_path / "e.sqlite"
        path.write_bytes(b"\x00garbage" * 512)
    before = _sqlite_threads()

    async def go() -> None:
        for _ in range(3):
            with pytest.raises(error, match=f"^SQLite at {re.escape(str(path))}: "):
                await SqliteStorage(path).open()

    asyncio.run(go())
    assert _sqlite_threads() == before
