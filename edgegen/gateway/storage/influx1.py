"""InfluxDB 1.x storage over its HTTP API (``/write`` with line protocol, ``/query`` with InfluxQL).

influxdb-client speaks only the 2.x API (its writes get 404 from a 1.x server), so this backend talks HTTP directly
with aiohttp, which influxdb-client[async] already brings. Every request is bounded by ``timeout_s``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from edgegen.gateway.storage import lineprotocol
from edgegen.gateway.storage.errors import StorageRejected, StorageUnavailable
from edgegen.gateway.storage.http_status import error_for_status
from edgegen.gateway.storage.records import Writable


def _ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Influx1Storage:
    name = "influx1"

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        create_database: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self._auth = {"u": username, "p": password or ""} if username else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._create_database = create_database
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise StorageUnavailable("InfluxDB storage is not open")
        return self._session

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        if self._create_database:
            try:
                await self.query(f"CREATE DATABASE {_ident(self.database)}", method="POST")
            except BaseException:
                await self.close()
                raise

    async def write(self, records: Sequence[Writable]) -> int:
        body_lines, values = lineprotocol.encode_records(records)
        await self.write_lines(body_lines)
        return values

    async def write_lines(self, lines: Sequence[str]) -> None:
        """Write encoded lines (the storage writer encodes once and keeps the lines for splitting)."""
        params = {"db": self.database, "precision": "u", **self._auth}
        for chunk in lineprotocol.chunks(lines):  # points are idempotent: a retry rewrites them unchanged
            await self._request("POST", "/write", params=params, data="\n".join(chunk).encode())

    async def query(self, q: str, method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL; return the statements' results (raising on any statement error)."""
        params = {"q": q, "db": self.database, "epoch": "u", **self._auth}
        text = await self._request(method, "/query", params=params)
        results: list[dict[str, Any]] = json.loads(text).get("results", [])
        for result in results:
            if "error" in result:
                raise StorageRejected(f"InfluxQL error: {result['error']}")
        return results

    async def _request(self, method: str, path: str, **kwargs: Any) -> str:
        try:
            async with self._client().request(method, self.url + path, **kwargs) as response:
                text = await response.text()
                if response.status >= 300:
                    raise error_for_status(response.status, text, response.headers)
                return text
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StorageUnavailable(f"InfluxDB at {self.url}: {exc!r}") from exc

    async def count_values(self, site: str, since_us: int = 0) -> dict[tuple[str, str], int]:
        results = await self.query(
            f"SELECT count(*) FROM samples WHERE site = {_string(site)} AND time >= {since_us}u"
            " GROUP BY node, stream"
        )
        counts: dict[tuple[str, str], int] = {}
        for series in results[0].get("series", []):
            tags = series["tags"]
            row = series["values"][0]
            counts[(tags["node"], tags["stream"])] = sum(v for v in row[1:] if v is not None)
        return counts

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
