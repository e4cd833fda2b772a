from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgegen.gateway.deadletter import DeadLetterStore
from edgegen.gateway.metrics import GatewayMetrics
from edgegen.gateway.protocol import BadChecksum, Truncated
from edgegen.gateway.rejects import RejectHandler


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rejections_count_by_cause_and_keep_dead_letters(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    store = DeadLetterStore(tmp_path / "dl.sqlite", max_records=100, max_payload_bytes=4)
    handler = RejectHandler(metrics, store, log_interval_s=10)
    handler.reject("t/1", b"abcdefgh", Truncated("short"))
    handler.reject("t/2", b"xy", BadChecksum("crc"))
    handler.reject("t/3", b"z", Truncated("short again"))
    assert metrics.rejects_by_cause() == {"truncated": 2, "bad_checksum": 1}
    records = store.records()
    assert [(r.topic, r.cause, r.detail, r.size, r.payload) for r in records] == [
        ("t/1", "truncated", "short", 8, b"abcd"),
        ("t/2", "bad_checksum", "crc", 2, b"xy"),
        ("t/3", "truncated", "short again", 1, b"z"),
    ]
    store.close()


def test_dead_letter_store_is_bounded_and_counts_evictions(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    store = DeadLetterStore(tmp_path / "dl.sqlite", max_records=3, max_payload_bytes=100)
    handler = RejectHandler(metrics, store, log_interval_s=10)
    for i in range(5):
        handler.reject(f"t/{i}", bytes([i]), Truncated(str(i)))
    assert len(store) == 3
    assert [r.topic for r in store.records()] == ["t/2", "t/3", "t/4"]
    assert metrics.value("edgegen_dead_letters_dropped_total") == 2
    store.close()
    reopened = DeadLetterStore(tmp_path / "dl.sqlite", max_records=3, max_payload_bytes=100)
    assert len(reopened) == 3
    reopened.close()


def test_logging_is_rate_limited_per_cause(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    store = DeadLetterStore(tmp_path / "dl.sqlite", max_records=1000, max_payload_bytes=10)
    handler = RejectHandler(GatewayMetrics(), store, log_interval_s=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="edgegen.gateway.rejects"):
        for _ in range(50):
            handler.reject("t", b"", Truncated("x"))
        handler.reject("t", b"", BadChecksum("y"))
        clock.now = 10.0
        handler.reject("t", b"", Truncated("z"))
    assert [r.getMessage() for r in caplog.records] == [
        "rejected message on t: truncated: x",
        "rejected message on t: bad_checksum: y",
        "rejected message on t: truncated: z (49 more truncated rejections suppressed)",
    ]
    store.close()
