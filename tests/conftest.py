from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import native
from tests.support.servers import InfluxDB, Mosquitto
from tests.support.shared_data import HAVE_TENSORFLOW, REQUIRE_TRAIN_ENV, SHARED_DATA

_databases = itertools.count()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """``train``: skip without TensorFlow (fail under TESTS_REQUIRE_TRAIN=1); ``micropython``: skip without the
    unix port (fail under TESTS_REQUIRE_NATIVE=1); ``data(NAME, ...)``: skip, naming what is missing, without
    ../shared/data/NAME. Before any fixture runs: module fixtures train and load."""
    if item.get_closest_marker("train") is not None and not HAVE_TENSORFLOW:
        message = "needs the train extra (tensorflow-cpu): pip install -e '.[train]'"
        if os.environ.get(REQUIRE_TRAIN_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    if item.get_closest_marker("micropython") is not None:
        native.micropython_binary()  # skips (or fails where required) without the unix port
    for marker in item.iter_markers("data"):
        for name in marker.args:
            if not (SHARED_DATA / name).exists():
                pytest.skip(f"../shared/data/{name} is not present (looked in {SHARED_DATA})")


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
