from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from edgegen.gateway.storage.sqlite import SqliteStorage
from tests.support.storage_records import float_record, record, scores


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM points ORDER BY node, ts_us, field").fetchall()


def test_write_stores_every_value_with_node_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "db" / "e.sqlite"

    async def go() -> int:
        storage = SqliteStorage(path)
        await storage.open()
        try:
            return await storage.write([record(), record(node="n2", seq=1, values=[[-2, 0]])])
        finally:
            await storage.close()

    assert asyncio.run(go()) == 6
    assert _rows(path) == [
        ("samples", "s1", "n1", "vib", 1_700_000_000_000_000, "c0", 0.5),
        ("samples", "s1", "n1", "vib", 1_700_000_000_000_000, "c1", 0.5),
        ("samples", "s1", "n1", "vib", 1_700_000_000_001_000, "c0", 1.5),
        ("samples", "s1", "n1", "vib", 1_700_000_000_001_000, "c1", 1.0),
        ("samples", "s1", "n2", "vib", 1_700_000_000_000_000, "c0", -1.0),
        ("samples", "s1", "n2", "vib", 1_700_000_000_000_000, "c1", 0.0),
    ]


def test_rewriting_a_batch_changes_nothing_and_counts_hold(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"

    async def go() -> dict[tuple[str, str], int]:
        storage = SqliteStorage(path)
        await storage.open()
        try:
            batch = [record(), record(seq=1, t0_us=1_700_000_000_002_000), float_record([[1.0, float("nan")]])]
            await storage.write(batch)
            await storage.write(batch)
            return await storage.count_values("s1")
        finally:
            await storage.close()

    assert asyncio.run(go()) == {("n1", "vib"): 8, ("n1", "raw"): 1}
    assert len(_rows(path)) == 9


def test_counts_filter_by_site_and_time(tmp_path: Path) -> None:
    async def go() -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        storage = SqliteStorage(tmp_path / "e.sqlite")
        await storage.open()
        try:
            await storage.write([record(), record(site="other")])
            return await storage.count_values("s1", 1_700_000_000_001_000), await storage.count_values("nope")
        finally:
            await storage.close()

    assert asyncio.run(go()) == ({("n1", "vib"): 2}, {})


def test_model_outputs_keep_their_whole_tag_set_so_versions_do_not_collide(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "db.sqlite")

    async def go() -> None:
        await storage.open()
        try:
            for _ in range(2):
                assert await storage.write([record(), scores("aaaaaaaaaaaa", 0), scores("bbbbbbbbbbbb", 0)]) == 8
        finally:
            await storage.close()

    asyncio.run(go())
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        rows = conn.execute(
            "SELECT measurement, tags, ts_us, field, value FROM derived ORDER BY tags, field"
        ).fetchall()
        assert conn.execute("SELECT count(*) FROM points").fetchone() == (4,)
    tags = "model=skab,model_version={},node=n1,site=s1,stream=vib"
    assert rows == [
        ("scores", tags.format("aaaaaaaaaaaa"), 0, "flag", 0.0),
        ("scores", tags.format("aaaaaaaaaaaa"), 0, "score", 0.5),
        ("scores", tags.format("bbbbbbbbbbbb"), 0, "flag", 0.0),
        ("scores", tags.format("bbbbbbbbbbbb"), 0, "score", 0.5),
    ]
