"""Sensor drivers against register-level fakes of the chips, under MicroPython; a missing sensor in the app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.micropython import run_micropython

pytestmark = pytest.mark.micropython


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_micropython("sensor_checks.py", str(tmp_path_factory.mktemp("hw"))))
    return result


def test_mpu6050_init_writes_exactly_the_configuration(checks: dict[str, Any]) -> None:
    # PWR_MGMT_1 = 1 (wake, gyro clock), SMPLRT_DIV, CONFIG (DLPF), GYRO_CONFIG (FS_SEL << 3), ACCEL_CONFIG
    assert checks["init_writes"] == [[0x6B, 1], [0x19, 0], [0x1A, 3], [0x1B, 0], [0x1C, 0]]
    assert checks["init_writes_8g"] == [[0x6B, 1], [0x19, 4], [0x1A, 1], [0x1B, 2 << 3], [0x1C, 2 << 3]]
    assert checks["scales"] == [2 / 32768] * 3 + [250 / 32768] * 3


def test_mpu6050_burst_read_decodes_big_endian_and_skips_temperature(checks: dict[str, Any]) -> None:
    assert checks["decoded"] == [0] * 6 + [-32768, 32767, 1, -1, 256, -256]


def test_a_missing_or_foreign_chip_is_a_sensor_error(checks: dict[str, Any]) -> None:
    assert checks["missing"] == "MPU-6050 not found at 0x68 ([Errno 19] ENODEV)"
    assert checks["wrong_chip"] == "device at 0x68 is not an MPU-6050 (WHO_AM_I 0x70)"


def test_adc_counts_are_centred_to_int16(checks: dict[str, Any]) -> None:
    assert checks["adc"] == [-32768, 32767, 0, 40000 - 32768]


def test_sensor_window_is_paced_and_stamped(checks: dict[str, Any]) -> None:
    assert checks["window_t0"] == 1_700_000_000_000_000
    assert checks["window_reads"] == 2 + 20  # WHO_AM_I and the decode test, then one burst per sample
    assert 19_000 <= checks["window_us"] < 40_000  # 20 samples at 1 kHz: the last one 19 ms after the first


def test_missing_sensor_reports_on_status_and_recovers_without_restart(checks: dict[str, Any]) -> None:
    assert checks["down_at_start"] is True
    status = checks["status_at_start"]
    assert status["state"] == "online"
    assert status["streams_down"] == ["stream imu: MPU-6050 not found at 0x68 ([Errno 19] ENODEV)"]
    assert checks["frames_while_missing"] == 0
    assert checks["up_after_retry"] is True
    assert checks["frames_after_retry"] > 0
    assert checks["status_after"]["streams_down"] == []
