"""The board's config.json checks (firmware_py.config), run on CPython: the same code as on the board."""

from __future__ import annotations

from typing import Any

import pytest

from edgegen.firmware_py.config import validate
from edgegen.firmware_py.errors import ConfigError

BASE: dict[str, Any] = {
    "site": "plant-1",
    "node_id": "press-4",
    "mqtt": {"host": "broker.local"},
    "streams": [{"name": "vib", "source": {"kind": "mpu6050"}}],
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def test_defaults_fill_every_key() -> None:
    cfg = validate(BASE)
    assert cfg["mqtt"]["port"] == 1883
    assert cfg["outbox"] == {"path": "outbox.bin", "slots": 64, "slot_size": 1024, "order": "oldest_first"}
    stream = cfg["streams"][0]
    assert (stream["channels"], stream["rate_hz"], stream["window"], stream["scales"]) == (6, 100, 50, None)
    assert stream["source"]["address"] == 0x68


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"site": ""}, "site: expected a non-empty string, got ''"),
        ({"node_id": "a/b"}, "node_id: expected 1-64 of [A-Za-z0-9._-] starting alphanumeric, got 'a/b'"),
        ({"mqtt": {"host": "x", "port": 0}}, "mqtt.port: expected an integer in 1..65535, got 0"),
        ({"mqtt": {"host": "x", "tls": "yes"}}, "mqtt.tls: expected true or false, got 'yes'"),
        ({"mqtt": {}}, "mqtt.host: required"),
        (
            {"outbox": {"order": "random"}},
            "outbox.order: expected one of oldest_first, newest_first, got 'random'",
        ),
        ({"streams": []}, "streams: expected at least one stream"),
        (
            {"streams": [{"name": "vib", "source": {"kind": "lidar"}}]},
            "streams[0].source.kind: expected one of sine, replay, mpu6050, adc, mcu_temp, got 'lidar'",
        ),
        (
            {"streams": [{"name": "vib", "channels": 3, "source": {"kind": "mpu6050"}}]},
            "streams[0].channels: a mpu6050 source has 6 channels, got 3",
        ),
        (
            {"streams": [{"name": "vib", "source": {"kind": "mpu6050", "accel_range_g": 3}}]},
            "streams[0].source.accel_range_g: expected one of 2, 4, 8, 16, got 3",
        ),
        (
            {"streams": [{"name": "a", "source": {"kind": "adc", "pins": [26, 27]}, "scales": [1.0]}]},
            "streams[0].scales: expected 2 numbers (one per channel), got 1",
        ),
        (
            {"streams": [{"name": "vib", "window": 256, "source": {"kind": "mpu6050"}}]},
            "streams[0].window: a frame of 256 x 6 samples needs 3172 bytes with its topic; outbox.slot_size 1024 "
            "holds 999",
        ),
        ({"watchdog_ms": -1}, "watchdog_ms: expected an integer in 0..3600000, got -1"),
        (
            {
                "streams": [
                    {"name": "vib", "source": {"kind": "mpu6050"}, "model": {"path": "e.tflite", "send": "event"}}
                ]
            },
            'streams[0].model.prescore: required when send is "event"',
        ),
        (
            {"streams": [{"name": "v", "source": {"kind": "mpu6050"}, "model": {"path": "e", "send": "raw"}}]},
            "streams[0].model.send: expected one of embedding, both, event, got 'raw'",
        ),
        (
            {"streams": [{"name": "v", "source": {"kind": "mpu6050"}, "model": {"path": "e", "quantile": 2}}]},
            "streams[0].model.quantile: expected a number in 0..1, got 2",
        ),
    ],
)
def test_each_bad_value_names_its_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(_with(**changes))
    assert str(caught.value) == message
