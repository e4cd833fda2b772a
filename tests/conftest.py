from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import InfluxDB, Mosquitto

_databases = itertools.count()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real mosquitto for the session (tests use distinct client ids and sites)."""
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One real InfluxDB 1.x for the session (tests use distinct databases)."""
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_database() -> str:
    return f"test{next(_databases)}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def private_influxdb(tmp_path: Path) -> Iterator[InfluxDB]:
    """An InfluxDB of this test's own, which it may pause or stop."""
    server = InfluxDB(tmp_path / "influxdb")
    server.start()
    yield server
    server.stop()
