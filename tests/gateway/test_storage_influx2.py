"""What only the InfluxDB 2.x/3.x backend does, against a scripted HTTP server (the behaviour every backend shares
is in test_storage_contract.py): the exact request it sends, and how it classifies each answer.

No 2.x/3.x server can be installed here (Debian ships 1.6.7), so what we verify is exactly what this thin layer
over influxdb-client sends, and how it classifies each answer.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest

from edgegen.gateway.storage import StorageError, StorageRejected, StorageUnavailable
from edgegen.gateway.storage.influx2 import Influx2Storage
from tests.support.scripted_http import Reply, Request, ScriptedHttpServer
from tests.support.storage_records import record


async def _write(replies: list[Reply]) -> tuple[list[Request], int | StorageError]:
    async with ScriptedHttpServer(replies) as server:
        storage = Influx2Storage(server.url, org="acme", bucket="plant", token="tok-123", timeout_s=5)
        await storage.open()
        try:
            outcome: int | StorageError = await storage.write([record(), record(node="n2")])
        except StorageError as exc:
            outcome = exc
        finally:
            await storage.close()
        return server.requests, outcome


def _body(request: Request) -> str:
    raw = gzip.decompress(request.body) if request.headers.get("Content-Encoding") == "gzip" else request.body
    return raw.decode()


def test_write_request_is_line_protocol_to_the_v2_endpoint() -> None:
    requests, outcome = asyncio.run(_write([Reply(204)]))
    assert outcome == 8
    [req] = requests
    assert (req.method, req.path) == ("POST", "/api/v2/write")
    assert req.query == {"org": "acme", "bucket": "plant", "precision": "us"}
    assert req.headers["Authorization"] == "Token tok-123"
    assert _body(req).split("\n") == [
        "samples,node=n1,site=s1,stream=vib c0=0.5,c1=0.5 1700000000000000",
        "samples,node=n1,site=s1,stream=vib c0=1.5,c1=1.0 1700000000001000",
        "samples,node=n2,site=s1,stream=vib c0=0.5,c1=0.5 1700000000000000",
        "samples,node=n2,site=s1,stream=vib c0=1.5,c1=1.0 1700000000001000",
    ]


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(429, '{"code":"too many requests"}', {"Retry-After": "7"}), StorageUnavailable, 7.0),
        (Reply(503, "overloaded", {"Retry-After": "2.5"}), StorageUnavailable, 2.5),
        (Reply(500, "boom"), StorageUnavailable, None),
        (Reply(400, '{"code":"invalid","message":"unable to parse"}'), StorageRejected, None),
        (Reply(401, '{"code":"unauthorized"}'), StorageRejected, None),
        (Reply(404, '{"code":"not found","message":"bucket not found"}'), StorageRejected, None),
    ],
)
def test_statuses_are_classified(reply: Reply, error: type[StorageError], retry_after: float | None) -> None:
    requests, outcome = asyncio.run(_write([reply]))
    assert len(requests) == 1  # influxdb-client itself must not retry behind our back
    assert type(outcome) is error
    if isinstance(outcome, StorageUnavailable):
        assert outcome.retry_after_s == retry_after
    else:
        assert isinstance(outcome, StorageRejected)
        assert outcome.status == reply.status
        assert reply.body.split('"')[3] in str(outcome)
