from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from edgegen.gateway.health import Health
from edgegen.gateway.http_api import OperatorServer
from edgegen.gateway.metrics import GatewayMetrics

WALL_T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
WALL_T0_ISO = "2023-11-14T22:13:20.000Z"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Reply:
    def __init__(self, status: int, content_type: str, body: str) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


async def _get(server: OperatorServer, path: str, method: str = "GET") -> Reply:
    async with aiohttp.ClientSession() as session, session.request(method, server.url + path) as resp:
        return Reply(resp.status, resp.headers["Content-Type"], await resp.text())


def _serve(server: OperatorServer, steps: Callable[[], Awaitable[None]]) -> None:
    async def go() -> None:
        async with server:
            await steps()

    asyncio.run(go())


def _health(clock: FakeClock | None = None, wall: FakeClock | None = None) -> Health:
    return Health(clock=clock or FakeClock(0.0), wall_clock=wall or FakeClock(WALL_T0))


# -- /metrics -----------------------------------------------------------------------------------------------------


def test_metrics_exposes_the_registry_with_exact_counter_values() -> None:
    metrics = GatewayMetrics()
    metrics.frames_stored.inc(12)
    metrics.frames_rejected.labels(cause="bad_crc").inc()
    server = OperatorServer(_health(), metrics.registry)

    async def steps() -> None:
        reply = await _get(server, "/metrics")
        assert reply.status == 200
        assert reply.content_type == CONTENT_TYPE_LATEST
        lines = reply.body.splitlines()
        assert "edgegen_frames_stored_total 12.0" in lines
        assert 'edgegen_frames_rejected_total{cause="bad_crc"} 1.0' in lines
        assert (
            "# TYPE edgegen_frames_stored_total counter" in lines
            or "# TYPE edgegen_frames_stored counter" in lines
        )

        metrics.frames_stored.inc(3)  # served live, not a copy taken at start
        assert "edgegen_frames_stored_total 15.0" in (await _get(server, "/metrics")).body.splitlines()

    _serve(server, steps)


# -- /readyz ------------------------------------------------------------------------------------------------------


def test_readyz_is_503_naming_the_failing_check_then_200_once_it_recovers() -> None:
    wall = FakeClock(WALL_T0)
    health = _health(wall=wall)
    health.set("mqtt", True, "subscribed")
    health.set("storage", False, "InfluxDB: connection refused")
    server = OperatorServer(health, CollectorRegistry())

    async def steps() -> None:
        reply = await _get(server, "/readyz")
        assert reply.status == 503
        assert reply.content_type.startswith("application/json")
        assert reply.json() == {
            "status": "not_ready",
            "checks": {
                "mqtt": {"ok": True, "detail": "subscribed", "since": WALL_T0_ISO},
                "storage": {"ok": False, "detail": "InfluxDB: connection refused", "since": WALL_T0_ISO},
            },
        }

        wall.now = WALL_T0 + 61.5
        health.set("storage", True)
        reply = await _get(server, "/readyz")
        assert reply.status == 200
        assert reply.json() == {
            "status": "ready",
            "checks": {
                "mqtt": {"ok": True, "detail": "subscribed", "since": WALL_T0_ISO},
                "storage": {"ok": True, "detail": "", "since": "2023-11-14T22:14:21.500Z"},
            },
        }

    _serve(server, steps)


def test_readyz_counts_an_expected_check_as_failing_until_reported() -> None:
    health = Health(["storage"], clock=FakeClock(0.0), wall_clock=FakeClock(WALL_T0))
    server = OperatorServer(health, CollectorRegistry())

    async def steps() -> None:
        reply = await _get(server, "/readyz")
        assert (reply.status, reply.json()) == (
            503,
            {
                "status": "not_ready",
                "checks": {"storage": {"ok": False, "detail": "not reported yet", "since": WALL_T0_ISO}},
            },
        )
        health.set("storage", True, "sqlite open")
        assert (await _get(server, "/readyz")).status == 200

    _serve(server, steps)


# -- /healthz -----------------------------------------------------------------------------------------------------


def test_healthz_is_503_once_a_heartbeat_is_stale_and_200_after_the_next_beat() -> None:
    clock = FakeClock(100.0)
    health = _health(clock=clock)
    health.heartbeat("writer", stale_after_s=5.0)
    health.heartbeat("ingest", stale_after_s=60.0)
    health.set("storage", False, "down")  # readiness does not affect liveness
    server = OperatorServer(health, CollectorRegistry())

    async def steps() -> None:
        reply = await _get(server, "/healthz")
        assert (reply.status, reply.json()) == (
            200,
            {
                "status": "alive",
                "loops": {
                    "ingest": {"ok": True, "last_beat_age_s": 0.0, "stale_after_s": 60.0},
                    "writer": {"ok": True, "last_beat_age_s": 0.0, "stale_after_s": 5.0},
                },
            },
        )

        clock.now = 105.0  # exactly stale_after_s: still alive
        assert (await _get(server, "/healthz")).status == 200

        clock.now = 105.5
        reply = await _get(server, "/healthz")
        assert (reply.status, reply.json()) == (
            503,
            {
                "status": "stale",
                "loops": {
                    "ingest": {"ok": True, "last_beat_age_s": 5.5, "stale_after_s": 60.0},
                    "writer": {"ok": False, "last_beat_age_s": 5.5, "stale_after_s": 5.0},
                },
            },
        )

        health.heartbeat("writer")  # keeps its stale_after_s
        reply = await _get(server, "/healthz")
        assert reply.status == 200
        assert reply.json()["loops"]["writer"] == {"ok": True, "last_beat_age_s": 0.0, "stale_after_s": 5.0}

    _serve(server, steps)


# -- extra routes, unknown paths, lifecycle --------------------------------------------------------------------


def test_extra_routes_answer_json_from_sync_and_async_callables() -> None:
    nodes = {"n1": {"frames": 12, "last_seq": 7}}

    async def async_nodes() -> object:
        await asyncio.sleep(0)
        return {"count": len(nodes)}

    def broken() -> object:
        raise RuntimeError("password=hunter2")

    routes: dict[str, Callable[[], Awaitable[object] | object]] = {
        "/nodes": lambda: nodes,
        "/nodes/count": async_nodes,
        "/broken": broken,
    }
    server = OperatorServer(_health(), CollectorRegistry(), extra_routes=routes)

    async def steps() -> None:
        reply = await _get(server, "/nodes")
        assert (reply.status, reply.json()) == (200, {"n1": {"frames": 12, "last_seq": 7}})
        assert reply.content_type.startswith("application/json")
        nodes["n2"] = {"frames": 1, "last_seq": 0}  # called per request
        assert (await _get(server, "/nodes/count")).json() == {"count": 2}

        reply = await _get(server, "/broken")
        assert (reply.status, reply.json()) == (500, {"error": "RuntimeError (details in the gateway log)"})
        assert "hunter2" not in reply.body

    _serve(server, steps)


def test_unknown_path_is_404_and_other_methods_405() -> None:
    server = OperatorServer(_health(), CollectorRegistry())

    async def steps() -> None:
        assert (await _get(server, "/nope")).status == 404
        assert (await _get(server, "/metrics/extra")).status == 404
        assert (await _get(server, "/metrics", method="POST")).status == 405

    _serve(server, steps)


def test_port_zero_binds_a_free_loopback_port_exposed_while_started() -> None:
    server = OperatorServer(_health(), CollectorRegistry())
    assert server.host == "127.0.0.1"
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port

    async def go() -> int:
        await server.start()
        try:
            port = server.port
            assert port > 0
            assert server.url == f"http://127.0.0.1:{port}"
            assert (await _get(server, "/healthz")).status == 200
            with pytest.raises(RuntimeError, match="already started"):
                await server.start()
        finally:
            await server.stop()
        await server.stop()  # idempotent
        return port

    port = asyncio.run(go())
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port

    async def connect_after_stop() -> None:
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(connect_after_stop())


def test_extra_routes_may_not_shadow_builtins_or_be_relative() -> None:
    with pytest.raises(ValueError, match="built in"):
        OperatorServer(_health(), CollectorRegistry(), extra_routes={"/metrics": dict})
    with pytest.raises(ValueError, match="must start with '/'"):
        OperatorServer(_health(), CollectorRegistry(), extra_routes={"nodes": dict})


# -- Health on its own --------------------------------------------------------------------------------------------


def test_check_since_moves_only_when_ok_changes() -> None:
    wall = FakeClock(WALL_T0)
    health = _health(wall=wall)
    assert health.ready()  # nothing registered
    health.set("storage", False, "refused")
    wall.now += 10
    health.set("storage", False, "timed out")  # still failing: since stays, detail updates
    check = health.check("storage")
    assert check is not None
    assert (check.ok, check.detail, check.since) == (False, "timed out", WALL_T0)
    assert health.failing() == {"storage": "timed out"}
    assert not health.ready()
    wall.now += 5
    health.set("storage", True)
    check = health.check("storage")
    assert check is not None
    assert (check.ok, check.since) == (True, WALL_T0 + 15)
    assert health.ready()
    json.dumps(health.snapshot())


def test_alive_uses_the_given_now_and_a_removed_loop_no_longer_counts() -> None:
    clock = FakeClock(0.0)
    health = Health(clock=clock, default_stale_after_s=2.0)
    health.heartbeat("ingest")
    assert health.alive(2.0)
    assert not health.alive(2.01)
    assert health.stale(3.0) == {"ingest": 3.0}
    assert health.alive()  # now = clock() = 0
    health.remove("ingest")
    assert health.alive(1000.0)
    with pytest.raises(ValueError):
        health.heartbeat("x", stale_after_s=0)
