"""The InfluxDB 1.x backend against a real influxd 1.6.7."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from edgegen.gateway.storage import StorageRejected, StorageUnavailable
from edgegen.gateway.storage.influx1 import Influx1Storage
from tests.support.servers import InfluxDB, free_port
from tests.support.storage_records import embedding_record, float_record, record, scores

pytestmark = pytest.mark.influxdb
T = TypeVar("T")


def _with(storage: Influx1Storage, use: Callable[[Influx1Storage], Awaitable[T]]) -> T:
    async def go() -> T:
        await storage.open()
        try:
            return await use(storage)
        finally:
            await storage.close()

    return asyncio.run(go())


def test_written_points_read_back_exactly(influxdb: InfluxDB, influx_database: str) -> None:
    storage = Influx1Storage(influxdb.url, influx_database)

    async def use(s: Influx1Storage) -> list[dict[str, Any]]:
        assert await s.write([record(), embedding_record(), float_record([[0.1, float("nan")]], t0_us=7)]) == 8
        return await s.query("SELECT * FROM samples, embeddings")

    results = _with(storage, use)
    series = {s["name"]: s for s in results[0]["series"]}
    samples = series["samples"]
    rows = [dict(zip(samples["columns"], row, strict=True)) for row in samples["values"]]
    assert [(r["time"], r["node"], r["stream"], r["c0"], r["c1"]) for r in rows] == [
        (7, "n1", "raw", float(float_record([[0.1]]).frame.values[0, 0]), None),
        (1_700_000_000_000_000, "n1", "vib", 0.5, 0.5),
        (1_700_000_000_001_000, "n1", "vib", 1.5, 1.0),
    ]
    emb = dict(zip(series["embeddings"]["columns"], series["embeddings"]["values"][0], strict=True))
    assert (emb["time"], emb["e0"], emb["e1"], emb["e2"]) == (2_000_000, -63.5, 0.5, 64.0)


def test_rewrites_are_idempotent_and_counts_are_per_node_stream(influxdb: InfluxDB, influx_database: str) -> None:
    storage = Influx1Storage(influxdb.url, influx_database)

    async def use(s: Influx1Storage) -> dict[tuple[str, str], int]:
        batch = [record(), record(node="n2"), record(node="n2", t0_us=1_700_000_000_002_000)]
        await s.write(batch)
        await s.write(batch)
        return await s.count_values("s1", 1_700_000_000_001_000)

    assert _with(storage, use) == {("n1", "vib"): 2, ("n2", "vib"): 6}


def test_missing_database_is_refused_not_retried(influxdb: InfluxDB) -> None:
    storage = Influx1Storage(influxdb.url, "does_not_exist", create_database=False)
    with pytest.raises(StorageRejected) as caught:
        _with(storage, lambda s: s.write([record()]))
    assert caught.value.status == 404
    assert "database not found" in str(caught.value)


def test_unreachable_server_is_unavailable(influx_database: str) -> None:
    storage = Influx1Storage(f"http://127.0.0.1:{free_port()}", influx_database, timeout_s=2)
    with pytest.raises(StorageUnavailable):
        _with(storage, lambda s: s.write([record()]))


def test_two_model_versions_never_overwrite_each_other_and_rewrites_change_nothing(
    influxdb: InfluxDB, influx_database: str
) -> None:
    """R10: outputs of two model versions for the same step are two points; re-sending either changes nothing."""
    storage = Influx1Storage(influxdb.url, influx_database)

    async def use(s: Influx1Storage) -> list[Any]:
        for _ in range(2):
            assert await s.write([scores("aaaaaaaaaaaa", score=0.25), scores("bbbbbbbbbbbb", score=0.75)]) == 4
        results = await s.query("SELECT score FROM scores GROUP BY model_version")
        return sorted((x["tags"]["model_version"], x["values"]) for x in results[0]["series"])

    assert _with(storage, use) == [
        ("aaaaaaaaaaaa", [[1_700_000_000_000_000, 0.25]]),
        ("bbbbbbbbbbbb", [[1_700_000_000_000_000, 0.75]]),
    ]
