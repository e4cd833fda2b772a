"""firmware_py under the real MicroPython unix port: golden vectors, byte copy, CRC, source determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgegen.firmware_py.sources import SineSource
from edgegen.gateway.protocol import decode
from edgegen.hil.latency import FIRMWARE_HOME
from tests.golden.vectors import GOLDEN, vectors
from tests.support.micropython import run_micropython

pytestmark = pytest.mark.micropython


@pytest.fixture(scope="module")
def golden_run() -> dict[str, dict[str, Any]]:
    lines = run_micropython("golden_frames.py", str(GOLDEN)).splitlines()
    return {doc["name"]: doc for doc in map(json.loads, lines)}


@pytest.fixture(scope="module")
def checks() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_micropython("firmware_checks.py"))
    return result


@pytest.mark.parametrize("vector", vectors(), ids=[v["name"] for v in vectors()])
def test_micropython_encoder_produces_golden_bytes(
    golden_run: dict[str, dict[str, Any]], vector: dict[str, Any]
) -> None:
    assert golden_run[vector["name"]]["hex"] == vector["hex"]


@pytest.mark.parametrize("vector", vectors(), ids=[v["name"] for v in vectors()])
def test_micropython_decoder_parses_golden_bytes_like_the_reference(
    golden_run: dict[str, dict[str, Any]], vector: dict[str, Any]
) -> None:
    got = golden_run[vector["name"]]["decoded"]
    ref = decode(bytes.fromhex(vector["hex"]))
    assert got["node"] == ref.node_id
    assert (got["seq"], got["t0_us"], got["period_us"]) == (ref.seq, ref.t0_us, ref.period_us)
    assert (got["type"], got["flags"], got["encoding"]) == (int(ref.msg_type), ref.flags, int(ref.encoding))
    assert (got["n_samples"], got["n_channels"], got["zero_point"]) == (
        ref.n_samples,
        ref.n_channels,
        ref.zero_point,
    )
    assert got["scales"] == list(ref.scales)
    expected = ref.values.reshape(-1).astype(np.float64)
    assert np.array_equal(np.asarray(got["values"], dtype=np.float64), expected)


def test_byte_copy_uses_viper_on_the_unix_port(checks: dict[str, Any]) -> None:
    assert checks["copy_impl"] == "viper"
    assert checks["copy_bytes"] == [0, 0, 1, 0, 0xFE, 0xFF, 0x34, 0x12, 0, 0]


def test_table_crc32_matches_binascii(checks: dict[str, Any]) -> None:
    assert checks["crc_check"] == 0xCBF43926  # the CRC-32 check value of "123456789"
    assert checks["crc_agrees"] is True


def test_firmware_decoder_refuses_a_bad_checksum(checks: dict[str, Any]) -> None:
    assert checks["bad_crc"] == "bad checksum"


def test_test_signal_is_bit_identical_on_micropython_and_cpython(checks: dict[str, Any]) -> None:
    src = SineSource(3, 50, 10000, 1_700_000_000_000_000, [1.3, 2.6, 3.9], 20000, 400, 7)
    buf = array("h", [0] * 150)
    ours: list[list[Any]] = []
    for _ in range(3):
        t0 = src.read(buf)
        ours.append([t0, list(buf)])
    assert checks["sine_windows"] == ours
    assert max(abs(v) for _, window in ours for v in window) <= 20400


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["armv6m", "armv7emsp", "xtensawin"])  # RP2040, STM32/Cortex-M4F, ESP32
def test_every_firmware_module_compiles_with_mpy_cross(tmp_path: Path, arch: str) -> None:
    """mpy-cross refuses CPython-only syntax; every module a board gets must pass it, viper code included."""
    modules = sorted((FIRMWARE_HOME / "firmware_py").rglob("*.py"))
    assert len(modules) >= 30
    for module in modules:
        out = tmp_path / (module.relative_to(FIRMWARE_HOME).as_posix().replace("/", "_")[:-3] + ".mpy")
        result = subprocess.run(
            [sys.executable, "-m", "mpy_cross", f"-march={arch}", "-o", str(out), str(module)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{module.name}: {result.stderr}"
        assert out.stat().st_size > 0


def test_stream_node_steady_state_allocates_nothing_on_the_unix_port() -> None:
    """200 windows sampled, framed and handed to the link without one heap byte (64-bit port: t0 and the CRC
    are small ints here; on 32-bit boards each is a small long-int allocation per frame)."""
    result = json.loads(run_micropython("steady_state.py"))
    assert result["frames"] == 201
    assert result["idle_bytes"] == 0
    assert result["step_bytes"] == 0
