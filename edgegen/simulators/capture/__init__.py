"""MQTT record and replay: capture a live session to a file, publish it again with its original timing.

The pieces live in their own modules (format, link, record, replay); this is the one import tools need.
"""

from __future__ import annotations

from edgegen.simulators.capture.format import (
    Capture,
    CaptureHeader,
    CaptureReader,
    CaptureRecord,
    CaptureWriter,
    encode_header,
    encode_record,
    read_capture,
)
from edgegen.simulators.capture.record import DEFAULT_FILTER, Recorder, RecordSummary
from edgegen.simulators.capture.replay import CaptureReplaySummary, replay_capture

__all__ = [
    "DEFAULT_FILTER",
    "Capture",
    "CaptureHeader",
    "CaptureReader",
    "CaptureRecord",
    "CaptureReplaySummary",
    "CaptureWriter",
    "RecordSummary",
    "Recorder",
    "encode_header",
    "encode_record",
    "read_capture",
    "replay_capture",
]
