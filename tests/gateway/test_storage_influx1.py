"""What only the InfluxDB 1.x backend does, against a real influxd 1.6.7 (the behaviour every backend shares is in
test_storage_contract.py): creating its database, InfluxQL queries and their errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from edgegen.gateway.storage import StorageRejected
from edgegen.gateway.storage.influx1 import Influx1Storage
from tests.support.servers import InfluxDB
from tests.support.storage_records import record

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


def _databases(influxdb: InfluxDB) -> list[str]:
    async def use(s: Influx1Storage) -> list[str]:
        results = await s.query("SHOW DATABASES")
        return [row[0] for row in results[0]["series"][0]["values"]]

    return _with(Influx1Storage(influxdb.url, "_internal", create_database=False), use)


def test_open_creates_the_database_unless_told_not_to(influxdb: InfluxDB, influx_database: str) -> None:
    _with(Influx1Storage(influxdb.url, influx_database + "_no", create_database=False), lambda s: asyncio.sleep(0))
    _with(Influx1Storage(influxdb.url, influx_database), lambda s: asyncio.sleep(0))
    names = _databases(influxdb)
    assert influx_database in names
    assert influx_database + "_no" not in names


def test_a_missing_database_is_refused_with_the_server_s_reason(influxdb: InfluxDB) -> None:
    storage = Influx1Storage(influxdb.url, "does_not_exist", create_database=False)
    with pytest.raises(StorageRejected) as caught:
        _with(storage, lambda s: s.write([record()]))
    assert caught.value.status == 404
    assert "database not found" in str(caught.value)


def test_an_influxql_error_is_refused_naming_it(influxdb: InfluxDB, influx_database: str) -> None:
    async def use(s: Influx1Storage) -> list[dict[str, Any]]:
        return await s.query("SELECT nonsense FROM")

    with pytest.raises(StorageRejected, match="error parsing query"):
        _with(Influx1Storage(influxdb.url, influx_database), use)
