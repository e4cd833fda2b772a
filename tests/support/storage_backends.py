"""Every storage backend behind one harness, for the contract suite (tests/gateway/test_storage_contract.py).

A harness makes fresh storages on a fresh place (an SQLite file, an InfluxDB database, a recording HTTP server),
one that cannot reach its backend, one whose backend refuses the write for good, and reads back everything stored
as rows ``(measurement, tags, timestamp, field, value)``, the shape InfluxDB identifies a value by.

influx2 has no server here (no InfluxDB 2.x/3.x can be installed on the test machines): its harness is a recording
HTTP server that answers 204 to ``POST /api/v2/write`` and checks each request's method, path, query and token.
"Stored" for it means the request bodies applied in order under InfluxDB's documented point identity (a value is
replaced by a later one with the same measurement, tag set, timestamp and field); what a real server would then
answer to a query is not tested.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

from edgegen.gateway.storage import Storage
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.gateway.storage.influx2 import Influx2Storage
from edgegen.gateway.storage.sqlite import SqliteStorage
from tests.support.scripted_http import Reply, Request, ScriptedHttpServer
from tests.support.servers import InfluxDB, free_port

T = TypeVar("T")
Tags = tuple[tuple[str, str], ...]
Row = tuple[str, Tags, int, str, float]  # measurement, tags (sorted by key), timestamp (µs), field, value

ORG, BUCKET, TOKEN = "acme", "plant", "tok-contract"
_databases = itertools.count()


class Harness(Protocol):
    name: str

    def storage(self) -> Storage:
        """A fresh storage (not yet opened) on this harness's place."""
        ...

    def unreachable(self) -> Storage:
        """A storage whose backend cannot be reached (or opened)."""
        ...

    def refusing(self) -> Storage:
        """A storage whose backend refuses every write for good."""
        ...

    async def stored(self) -> set[Row]:
        """Everything this harness's place holds."""
        ...


class Backend(Protocol):
    """Runs ``use`` with a harness, inside one event loop (the influx2 harness's server lives in it)."""

    name: str

    def run(self, use: Callable[[Harness], Awaitable[T]]) -> T: ...


# -- sqlite ------------------------------------------------------------------------------------------------------


class SqliteHarness:
    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.path = tmp / "contract.sqlite"

    def storage(self) -> Storage:
        return SqliteStorage(self.path)

    def unreachable(self) -> Storage:
        blocker = self.tmp / "a-file"
        blocker.write_text("not a directory")
        return SqliteStorage(blocker / "db.sqlite")  # its directory cannot be made

    def refusing(self) -> Storage:
        garbage = self.tmp / "garbage.sqlite"
        garbage.write_bytes(b"this is not an SQLite database, whatever its name says" * 100)
        return SqliteStorage(garbage)

    async def stored(self) -> set[Row]:
        if not self.path.exists():
            return set()
        with sqlite3.connect(self.path) as conn:
            samples = conn.execute("SELECT measurement, site, node, stream, ts_us, field, value FROM points")
            rows: set[Row] = {
                (m, (("node", node), ("site", site), ("stream", stream)), ts, field, value)
                for m, site, node, stream, ts, field, value in samples
            }
            derived = conn.execute("SELECT measurement, tags, ts_us, field, value FROM derived")
            rows |= {(m, _split_tags(tags), ts, field, value) for m, tags, ts, field, value in derived}
        return rows


def _split_tags(text: str) -> Tags:
    return tuple(tuple(pair.split("=", 1)) for pair in text.split(","))  # type: ignore[misc]


class SqliteBackend:
    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def run(self, use: Callable[[Harness], Awaitable[T]]) -> T:
        return asyncio.run(use(SqliteHarness(self.tmp)))  # type: ignore[arg-type]


# -- influx1: a real influxd 1.6.7 ------------------------------------------------------------------------------


class Influx1Harness:
    name = "influx1"

    def __init__(self, server: InfluxDB) -> None:
        self.server = server
        self.database = f"contract{next(_databases)}"
        server.create_database(self.database)

    def storage(self) -> Storage:
        return Influx1Storage(self.server.url, self.database, timeout_s=10)

    def unreachable(self) -> Storage:
        return Influx1Storage(f"http://127.0.0.1:{free_port()}", self.database, timeout_s=2)

    def refusing(self) -> Storage:
        return Influx1Storage(self.server.url, f"missing{next(_databases)}", create_database=False)

    async def stored(self) -> set[Row]:
        reader = Influx1Storage(self.server.url, self.database, create_database=False)
        await reader.open()
        try:
            results = await reader.query("SELECT * FROM /.*/ GROUP BY *")
        finally:
            await reader.close()
        rows: set[Row] = set()
        for series in results[0].get("series", []):
            tags = tuple(sorted((k, v) for k, v in series.get("tags", {}).items() if v != ""))
            for values in series["values"]:
                point = dict(zip(series["columns"], values, strict=True))
                ts = point.pop("time")
                rows |= {(series["name"], tags, ts, k, float(v)) for k, v in point.items() if v is not None}
        return rows


class Influx1Backend:
    name = "influx1"

    def __init__(self, server: InfluxDB) -> None:
        self.server = server

    def run(self, use: Callable[[Harness], Awaitable[T]]) -> T:
        return asyncio.run(use(Influx1Harness(self.server)))  # type: ignore[arg-type]


# -- influx2: a recording HTTP server --------------------------------------------------------------------------


class Influx2Harness:
    name = "influx2"

    def __init__(self, server: ScriptedHttpServer, refusing: ScriptedHttpServer) -> None:
        self.server = server
        self.refusing_server = refusing

    def storage(self) -> Storage:
        return Influx2Storage(self.server.url, ORG, BUCKET, TOKEN, timeout_s=10)

    def unreachable(self) -> Storage:
        return Influx2Storage(f"http://127.0.0.1:{free_port()}", ORG, BUCKET, TOKEN, timeout_s=2)

    def refusing(self) -> Storage:
        return Influx2Storage(self.refusing_server.url, ORG, BUCKET, TOKEN, timeout_s=10)

    async def stored(self) -> set[Row]:
        latest: dict[tuple[str, Tags, int, str], float] = {}
        for request in self.server.requests:
            for line in _write_body(request).split("\n"):
                measurement, tags, fields, ts = parse_line(line)
                for name, value in fields:
                    latest[(measurement, tags, ts, name)] = value  # a later write of the same point replaces it
        return {(*key, value) for key, value in latest.items()}


def _write_body(request: Request) -> str:
    """The body of a write as InfluxDB 2.x takes it; anything else fails the test."""
    assert (request.method, request.path) == ("POST", "/api/v2/write"), request
    assert request.query == {"org": ORG, "bucket": BUCKET, "precision": "us"}, request.query
    assert request.headers["Authorization"] == f"Token {TOKEN}"
    raw = gzip.decompress(request.body) if request.headers.get("Content-Encoding") == "gzip" else request.body
    return raw.decode()


class Influx2Backend:
    name = "influx2"

    def run(self, use: Callable[[Harness], Awaitable[T]]) -> T:
        async def go() -> T:
            refused = Reply(404, '{"code":"not found","message":"bucket \\"plant\\" not found"}')
            async with (
                ScriptedHttpServer([Reply(204)] * 1000) as server,
                ScriptedHttpServer([refused] * 100) as refusing,
            ):
                return await use(Influx2Harness(server, refusing))

        return asyncio.run(go())


# -- reading line protocol back -----------------------------------------------------------------------------------

_ESCAPED = {",", "=", " "}


def _split(text: str, separator: str, limit: int = -1) -> list[str]:
    """Split at ``separator`` where it is not escaped; backslash escapes stay in the parts."""
    parts, current, i = [], "", 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPED:
            current += text[i : i + 2]
            i += 2
            continue
        if char == separator and limit != 0:
            parts.append(current)
            current = ""
            limit -= 1
        else:
            current += char
        i += 1
    return [*parts, current]


def _unescape(text: str) -> str:
    for char in _ESCAPED:
        text = text.replace("\\" + char, char)
    return text


def parse_line(line: str) -> tuple[str, Tags, tuple[tuple[str, float], ...], int]:
    """One line of float fields, as the backends write them: measurement, sorted tags, fields, timestamp."""
    key, fields, ts = _split(line, " ")
    measurement, *tag_pairs = _split(key, ",")
    tags = tuple(sorted((_unescape(k), _unescape(v)) for k, v in (_split(p, "=", 1) for p in tag_pairs)))
    values = tuple((_unescape(k), float(v)) for k, v in (_split(f, "=", 1) for f in _split(fields, ",")))
    return _unescape(measurement), tags, values, int(ts)
