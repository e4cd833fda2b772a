"""The `board` marker: tests that need a real board on EDGEGEN_HIL_PORT skip, saying so, without one."""

from __future__ import annotations

import os

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("board") and not os.environ.get("EDGEGEN_HIL_PORT"):
        pytest.skip("needs a MicroPython board: set EDGEGEN_HIL_PORT to its serial port (e.g. /dev/ttyACM0)")
