"""InfluxDB 2.x / 3.x storage: a thin layer over influxdb-client's asynchronous write API.

Only the line protocol and the error mapping are ours; authentication, the request and its timeout are
influxdb-client's. No 2.x/3.x server can be installed on our CI machines (Debian ships InfluxDB 1.6.7), so the
tests check the requests this backend makes against a scripted HTTP server.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from edgegen.gateway.storage import lineprotocol
from edgegen.gateway.storage.errors import StorageUnavailable
from edgegen.gateway.storage.http_status import error_for_status
from edgegen.gateway.storage.records import Writable


class Influx2Storage:
    name = "influx2"

    def __init__(self, url: str, org: str, bucket: str, token: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.bucket = bucket
        self._token = token
        self._timeout_ms = int(timeout_s * 1000)
        self._client: InfluxDBClientAsync | None = None

    async def open(self) -> None:
        self._client = InfluxDBClientAsync(url=self.url, token=self._token, org=self.org, timeout=self._timeout_ms)

    async def write(self, records: Sequence[Writable]) -> int:
        body_lines, values = lineprotocol.encode_records(records)
        await self.write_lines(body_lines)
        return values

    async def write_lines(self, lines: Sequence[str]) -> None:
        """Write encoded lines (the storage writer encodes once and keeps the lines for splitting)."""
        if self._client is None:
            raise StorageUnavailable("InfluxDB storage is not open")
        try:
            for chunk in lineprotocol.chunks(lines):  # points are idempotent: a retry rewrites them
                await self._client.write_api().write(
                    bucket=self.bucket,
                    org=self.org,
                    record=chunk,
                    write_precision=WritePrecision.US,  # type: ignore[arg-type]  # the library types its constants as str
                )
        except ApiException as exc:
            body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            raise error_for_status(exc.status or 0, body, dict(exc.headers or {})) from exc
        except (InfluxDBError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise StorageUnavailable(f"InfluxDB at {self.url}: {exc!r}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
