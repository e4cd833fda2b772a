"""Real mosquitto and influxd for the tests (bench/harness/servers.py): a missing binary skips the test, or fails
it when the test script demands every server (TESTS_REQUIRE_SERVERS=1)."""

from __future__ import annotations

import os

import pytest

from bench.harness import servers
from bench.harness.servers import Server, ServerMissing, free_port

REQUIRE_ENV = "TESTS_REQUIRE_SERVERS"


def find_binary(name: str) -> str:
    """The binary's path; skip the test when it is missing, unless the test script demands every server."""
    try:
        return servers.find_binary(name)
    except ServerMissing as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


class Mosquitto(servers.Mosquitto):
    locate = staticmethod(find_binary)


class InfluxDB(servers.InfluxDB):
    locate = staticmethod(find_binary)


__all__ = ["InfluxDB", "Mosquitto", "Server", "find_binary", "free_port"]
