"""MQTT record and replay: capture a live session to a file, publish it again with its original timing.

The pieces live in their own modules (format, recorder, replayer); this is the one import tools need.
"""

from __future__ import annotations

from edgegen.simulators.capture_format import (
    Capture,
    CaptureHeader,
    CaptureReader,
    CaptureRecord,
    CaptureWriter,
    encode_header,
    encode_record,
    read_capture,
)
from edgegen.simulators.capture_record import DEFAULT_FILTER, Recorder, RecordSummary
from edgegen.simulators.capture_replay import CaptureReplaySummary, replay_capture

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
