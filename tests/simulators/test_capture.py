"""MQTT record and replay against a real mosquitto: fidelity of content and timing, crash tolerance, the codec."""

from __future__ import annotations

import io
import itertools
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from edgegen.gateway.config import NodeSettings
from edgegen.simulators.capture import (
    CaptureHeader,
    CaptureReader,
    CaptureRecord,
    CaptureWriter,
    Recorder,
    encode_header,
    encode_record,
    read_capture,
    replay_capture,
)
from edgegen.simulators.errors import CaptureCorrupt, LinkError, UnsupportedCaptureVersion
from edgegen.simulators.node import VirtualNode, join_all
from tests.support.servers import Mosquitto, free_port

SITE = "capture-rt"
NODES = 3
FRAMES = 20  # per node: 10 samples at 100 Hz a frame, so 2.0 s of session
# Each node's retained status (QoS 0, as the firmware sends it) also says online on connecting and again at its
# first status tick, and offline on a clean close; 2 s is within one status interval, so no other status goes out.
STATUSES = ["online", "online", "offline"]
MESSAGES = NODES * (FRAMES + len(STATUSES))
# p95 of |replay inter-arrival - capture inter-arrival / speed|, recorder to recorder. Measured, 2-core machine:
# x1 1.2-4.5 ms, x10 0.5-4.1 ms with other tests running; x1 8.3-9.7 ms, x10 5.1-9.0 ms beside three CPU hogs.
P95_ERROR_BOUND_MS = 25.0
EDGEGEN_RECORD = [sys.executable, "-m", "edgegen.cli", "record"]
HEADER = CaptureHeader("mqtt://example:1883", ("edgegen/v1/#",), "2026-01-01T00:00:00.000000Z")

Row = tuple[str, int, bool, bytes]


@dataclass(frozen=True)
class Session:
    path: Path
    journals: dict[str, list[bytes]]  # data payloads each node published, in order


def rows(records: list[CaptureRecord], strip: str = "") -> list[Row]:
    return [(r.topic.removeprefix(strip), r.qos, r.retain, r.payload) for r in records]


def per_qos(rows_: list[Row]) -> dict[int, list[Row]]:
    """The rows of each QoS, in order. MQTT keeps one publisher's order within a QoS only: a broker sends QoS 0
    at once while QoS 1 waits for room in the subscriber's in-flight window, so in a burst a node's status (QoS 0,
    as the firmware sends it) can overtake earlier frames."""
    out: dict[int, list[Row]] = {}
    for row in rows_:
        out.setdefault(row[1], []).append(row)
    return out


def paired_times(original: list[CaptureRecord], replayed: list[CaptureRecord]) -> list[tuple[int, int]]:
    """(recorded, replayed) t_us of every message, in the recording's order; messages pair up within each QoS."""
    queues: dict[int, Iterator[CaptureRecord]] = {}
    for qos in {r.qos for r in replayed}:
        queues[qos] = iter([r for r in replayed if r.qos == qos])
    return [(r.t_us, next(queues[r.qos]).t_us) for r in original]


def record_until(recorder: Recorder, count: int, timeout_s: float = 20.0) -> None:
    recorder.wait(messages=count, duration_s=timeout_s)  # duration counts from start: generous on purpose
    assert recorder.messages == count, f"{recorder.messages} of {count} messages recorded"


@pytest.fixture(scope="module")
def session(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Session:
    """A live session of three virtual nodes at real time, recorded once for the module's tests."""
    path = tmp_path_factory.mktemp("capture") / "session.egcap"
    journals: dict[str, list[bytes]] = {f"n{i}": [] for i in range(NODES)}
    with Recorder(mosquitto.url, path, [f"edgegen/v1/{SITE}/#"]) as recorder:
        nodes = [
            VirtualNode(
                NodeSettings(site=SITE, node_id=node, channels=2, sample_rate_hz=100.0, window=10, seed=i),
                mosquitto.url,
                speed=1.0,
                t_start_us=1_700_000_000_000_000,
                journal=journal,
            )
            for i, (node, journal) in enumerate(journals.items())
        ]
        for node in nodes:
            node.start(frames=FRAMES)
            time.sleep(0.033)  # staggered: arrivals interleave instead of coinciding
        results = join_all(nodes, 30)
        assert [(r.frames, r.dropped) for r in results] == [(FRAMES, 0)] * NODES
        record_until(recorder, MESSAGES)
    return Session(path, journals)


@pytest.mark.slow
@pytest.mark.mosquitto
def test_the_recording_holds_every_frame_and_status_exactly(session: Session) -> None:
    capture = read_capture(session.path)

    assert (capture.torn_records, len(capture.records)) == (0, MESSAGES)
    assert capture.header.filters == (f"edgegen/v1/{SITE}/#",)
    assert capture.header.retain_as_published
    assert capture.records[0].t_us == 0
    assert all(a.t_us <= b.t_us for a, b in zip(capture.records, capture.records[1:], strict=False))
    for node, journal in session.journals.items():
        assert len(journal) == FRAMES
        data = [r for r in capture.records if r.topic == f"edgegen/v1/{SITE}/{node}/data/vib"]
        assert [r.payload for r in data] == journal
        assert {(r.qos, r.retain) for r in data} == {(1, False)}
        status = [r for r in capture.records if r.topic == f"edgegen/v1/{SITE}/{node}/status"]
        assert [(r.qos, r.retain, json.loads(r.payload)["state"]) for r in status] == [
            (0, True, s) for s in STATUSES
        ]
    assert 1.8 < capture.records[-1].t_us / 1e6 < 4.0  # 2.0 s of signal, at real time


@pytest.mark.slow
@pytest.mark.mosquitto
def test_replay_into_another_broker_reproduces_every_message_in_order(session: Session, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "other")
    broker.start()
    try:
        seen: list[int] = []
        with Recorder(broker.url, tmp_path / "replayed.egcap") as second:
            summary = replay_capture(session.path, broker.url, speed=0, progress=seen.append)
            record_until(second, MESSAGES)
    finally:
        broker.stop()
    original, replayed = read_capture(session.path), read_capture(tmp_path / "replayed.egcap")

    assert per_qos(rows(replayed.records)) == per_qos(rows(original.records))
    assert seen == list(range(1, MESSAGES + 1))
    assert (summary.messages, summary.bytes) == (MESSAGES, sum(len(r.payload) for r in original.records))
    assert (summary.torn_records, summary.stopped, summary.max_lateness_ms) == (0, False, 0.0)


@pytest.mark.slow
@pytest.mark.mosquitto
@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_replay_keeps_the_original_timing(
    session: Session, mosquitto: Mosquitto, tmp_path: Path, speed: float
) -> None:
    prefix = f"replay-x{speed:g}-{secrets.token_hex(2)}/"  # apart from the live topics and their retained statuses
    out = tmp_path / "replayed.egcap"
    with Recorder(mosquitto.url, out, [f"{prefix}edgegen/v1/{SITE}/#"]) as second:
        summary = replay_capture(session.path, mosquitto.url, speed=speed, topic_prefix=prefix)
        record_until(second, MESSAGES)
    original, replayed = read_capture(session.path), read_capture(out)

    assert all(r.topic.startswith(prefix) for r in replayed.records)
    assert per_qos(rows(replayed.records, strip=prefix)) == per_qos(rows(original.records))
    pairs = paired_times(original.records, replayed.records)
    gaps = [((b[0] - a[0]) / 1000, (b[1] - a[1]) / 1000) for a, b in itertools.pairwise(pairs)]
    errors = sorted(abs(replay_gap - gap / speed) for gap, replay_gap in gaps)
    p95 = statistics.quantiles(errors, n=20)[-1]
    span_error = abs((pairs[-1][1] - pairs[0][1]) - (pairs[-1][0] - pairs[0][0]) / speed) / 1000
    print(
        f"x{speed:g}: p95 gap error {p95:.2f} ms, max {errors[-1]:.2f} ms, span error {span_error:.2f} ms, "
        f"max lateness {summary.max_lateness_ms:.2f} ms"
    )
    assert p95 < P95_ERROR_BOUND_MS
    assert span_error < P95_ERROR_BOUND_MS  # no drift: errors do not accumulate over the run
    assert summary.messages == MESSAGES


@pytest.mark.mosquitto
def test_under_mqtt_3_1_1_live_retain_flags_are_lost_and_the_header_says_so(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    topic = f"v311-{secrets.token_hex(3)}/status"
    out = tmp_path / "v311.egcap"
    with Recorder(mosquitto.url, out, [topic], protocol="3.1.1") as recorder:
        with CaptureWriter(tmp_path / "one.egcap", HEADER) as writer:
            writer.write(CaptureRecord(0, topic, 1, True, b"on"))
        replay_capture(tmp_path / "one.egcap", mosquitto.url, speed=0)
        record_until(recorder, 1)
    capture = read_capture(out)

    assert not capture.header.retain_as_published
    assert rows(capture.records) == [(topic, 1, False, b"on")]  # the broker cleared the flag in flight
    with CaptureWriter(tmp_path / "clear.egcap", HEADER) as writer:
        writer.write(CaptureRecord(0, topic, 1, True, b""))
    replay_capture(tmp_path / "clear.egcap", mosquitto.url, speed=0)  # an empty retained payload clears it


@pytest.mark.mosquitto
def test_stop_ends_a_replay_between_messages(mosquitto: Mosquitto, tmp_path: Path) -> None:
    path = tmp_path / "slow.egcap"
    base = f"stop-{secrets.token_hex(3)}"
    write_capture(path, [CaptureRecord(t * 60_000_000, f"{base}/t", 1, False, b"x") for t in range(3)])
    stop = threading.Event()
    started = time.monotonic()

    summary = replay_capture(path, mosquitto.url, progress=lambda n: stop.set(), stop=stop)

    assert (summary.messages, summary.bytes, summary.stopped) == (1, 1, True)
    assert time.monotonic() - started < 30  # did not sleep until the second record was due, 60 s in


def test_an_unreachable_broker_is_a_link_error(tmp_path: Path) -> None:
    path = tmp_path / "ok.egcap"
    write_capture(path, THREE)

    port = free_port()  # nothing listens there

    with pytest.raises(LinkError, match=rf"cannot reach the broker at 127\.0\.0\.1:{port}"):
        replay_capture(path, f"mqtt://127.0.0.1:{port}")


@pytest.mark.mosquitto
def test_credentials_in_the_url_are_used_and_not_written(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "auth", passwords={"rec": "s3cret@x"})
    broker.start()
    try:
        url = broker.url.replace("mqtt://", "mqtt://rec:s3cret%40x@")
        path = tmp_path / "one.egcap"
        write_capture(path, THREE[:1])
        with Recorder(url, tmp_path / "auth.egcap", ["edgegen/v1/#"]) as recorder:
            replay_capture(path, url, speed=0)
            record_until(recorder, 1)
        with pytest.raises(LinkError, match="refused"):
            replay_capture(path, broker.url)
    finally:
        broker.stop()
    written = (tmp_path / "auth.egcap").read_bytes()

    assert read_capture(tmp_path / "auth.egcap").header.broker == broker.url
    assert b"s3cret" not in written


# --- the file format, without a broker


def write_capture(path: Path, records: list[CaptureRecord]) -> list[int]:
    """Write ``records``; return each record's byte offset, then the file's length."""
    with CaptureWriter(path, HEADER) as writer:
        for r in records:
            writer.write(r)
    offsets = [len(encode_header(HEADER))]
    for r in records:
        offsets.append(offsets[-1] + len(encode_record(r)))
    assert path.stat().st_size == offsets[-1]
    return offsets


THREE = [
    CaptureRecord(0, "edgegen/v1/s/n/status", 1, True, b'{"state": "online"}'),
    CaptureRecord(100_000, "edgegen/v1/s/n/data/vib", 1, False, bytes(range(256))),
    CaptureRecord(200_123, "edgegen/v1/s/n/data/vib", 0, False, b"\x00\n\r\xff"),
]


def test_the_record_layout_is_exactly_as_documented() -> None:
    encoded = encode_record(CaptureRecord(5, "a/b", 1, True, b"\x01\x02"))

    body = (5).to_bytes(8, "big") + b"\x05" + (3).to_bytes(2, "big") + b"a/b" + b"\x01\x02"
    length = len(body).to_bytes(4, "big")
    assert encoded == length + zlib.crc32(length).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    assert encode_header(HEADER)[:10] == b"\x89EGCAP\r\n\x00\x01"


@pytest.mark.parametrize("keep", [1, 7, 8, 20, -4, -1], ids=lambda k: f"last-record-cut-to-{k}")
def test_a_torn_last_record_is_ignored_and_counted(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "torn.egcap"
    offsets = write_capture(path, THREE)
    last_length = offsets[3] - offsets[2]
    kept = keep if keep > 0 else last_length + keep
    with path.open("r+b") as f:
        f.truncate(offsets[2] + kept)

    capture = read_capture(path)

    assert capture.records == THREE[:2]
    assert (capture.torn_records, capture.torn_bytes) == (1, kept)


def test_a_zero_filled_tail_after_a_power_cut_is_torn_not_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "zeros.egcap"
    write_capture(path, THREE)
    with path.open("ab") as f:
        f.write(bytes(300))

    capture = read_capture(path)

    assert (capture.records, capture.torn_records, capture.torn_bytes) == (THREE, 1, 300)


def test_an_intact_file_has_no_torn_record(tmp_path: Path) -> None:
    path = tmp_path / "ok.egcap"
    write_capture(path, THREE)

    capture = read_capture(path)

    assert (capture.header, capture.records, capture.torn_records, capture.torn_bytes) == (HEADER, THREE, 0, 0)


@pytest.mark.parametrize(
    ("record", "at"),
    [(1, 0), (1, 2), (1, 5), (1, 8), (1, 30), (1, -1), (2, 9)],
    ids=["length", "length-low", "length-check", "time", "payload", "crc", "last-record-body"],
)
def test_a_damaged_record_raises_naming_its_byte_offset(tmp_path: Path, record: int, at: int) -> None:
    path = tmp_path / "bad.egcap"
    offsets = write_capture(path, THREE)
    data = bytearray(path.read_bytes())
    data[(offsets[record] if at >= 0 else offsets[record + 1]) + at] ^= 0x40
    path.write_bytes(bytes(data))

    with pytest.raises(CaptureCorrupt, match=rf"byte offset {offsets[record]}\b") as caught:
        read_capture(path)
    assert caught.value.offset == offsets[record]


def test_a_damaged_file_is_refused_before_anything_is_published(tmp_path: Path) -> None:
    path = tmp_path / "bad.egcap"
    offsets = write_capture(path, THREE)
    data = bytearray(path.read_bytes())
    data[offsets[2] + 12] ^= 1
    path.write_bytes(bytes(data))

    with pytest.raises(CaptureCorrupt):  # the URL is unreachable: the check comes first
        replay_capture(path, "mqtt://127.0.0.1:1")


def test_not_a_capture_and_a_newer_version_are_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "x.egcap"
    path.write_bytes(b"edgegen/v1/# some text file\n")
    with pytest.raises(CaptureCorrupt, match="byte offset 0"):
        read_capture(path)
    path.write_bytes(encode_header(HEADER).replace(b"\x00\x01", b"\x00\x02", 1))
    with pytest.raises(UnsupportedCaptureVersion, match="version 2"):
        read_capture(path)


records_strategy = st.lists(
    st.builds(
        CaptureRecord,
        t_us=st.integers(0, 2**64 - 1),
        topic=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
        qos=st.integers(0, 2),
        retain=st.booleans(),
        payload=st.binary(max_size=200),
    ),
    max_size=8,
)


@given(records=records_strategy)
@settings(max_examples=100, deadline=None)
def test_codec_round_trip(records: list[CaptureRecord]) -> None:
    data = encode_header(HEADER) + b"".join(encode_record(r) for r in records)

    reader = CaptureReader(io.BytesIO(data))

    assert (reader.header, list(reader), reader.torn_records) == (HEADER, records, 0)


@given(records=records_strategy.filter(bool), cut=st.integers(1, 10_000))
@settings(max_examples=100, deadline=None)
def test_any_truncation_yields_the_whole_records_before_it(records: list[CaptureRecord], cut: int) -> None:
    header = encode_header(HEADER)
    encoded = [encode_record(r) for r in records]
    data = header + b"".join(encoded)
    end = len(header) + cut % (len(data) - len(header))
    ends = [len(header) + sum(len(e) for e in encoded[: i + 1]) for i in range(len(records))]
    whole = sum(1 for e in ends if e <= end)

    reader = CaptureReader(io.BytesIO(data[:end]))

    assert list(reader) == records[:whole]
    assert reader.torn_bytes == end - (ends[whole - 1] if whole else len(header))
    assert reader.torn_records == (1 if reader.torn_bytes else 0)


# --- the command line


@pytest.mark.mosquitto
def test_record_cli_stops_after_n_messages_and_prints_a_summary(mosquitto: Mosquitto, tmp_path: Path) -> None:
    from edgegen.cli import app

    base = f"cli-{secrets.token_hex(3)}"
    topics = [f"{base}/a", f"{base}/b", f"{base}/c"]
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{base}-pub")
    client.connect(host, int(port))
    client.loop_start()
    try:  # retained: the recorder gets all three as it subscribes, no race with a publisher thread
        for i, topic in enumerate(topics):
            client.publish(topic, bytes([i, 0, 255]), qos=1, retain=True).wait_for_publish(10)
        out = tmp_path / "cli.egcap"

        result = CliRunner(env={"EDGEGEN_CONFIG": None, "COLUMNS": "200"}).invoke(
            app,
            ["record", "--broker", mosquitto.url, "--topic", f"{base}/#", "--out", str(out), "--messages", "3"],
        )

        assert result.exit_code == 0, result.output
        capture = read_capture(out)
        assert sorted(rows(capture.records)) == [(t, 1, True, bytes([i, 0, 255])) for i, t in enumerate(topics)]
        assert f"3 messages, 9 payload bytes ({out.stat().st_size} file bytes)" in result.output
        for topic in topics:
            assert f"{topic} " in result.output
        again = CliRunner(env={"EDGEGEN_CONFIG": None}).invoke(
            app,
            ["record", "--broker", mosquitto.url, "--topic", f"{base}/#", "--out", str(out), "--messages", "3"],
        )
        assert again.exit_code == 1
        assert "exists (--force overwrites it)" in again.output
    finally:
        for topic in topics:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        client.disconnect()
        client.loop_stop()


@pytest.mark.slow
@pytest.mark.mosquitto
def test_record_cli_stops_cleanly_on_ctrl_c_with_a_summary(mosquitto: Mosquitto, tmp_path: Path) -> None:
    base = f"sigint-{secrets.token_hex(3)}"
    out = tmp_path / "sigint.egcap"
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{base}-pub")
    client.connect(host, int(port))
    client.loop_start()
    try:
        client.publish(f"{base}/x", b"\x01\x02", qos=1, retain=True).wait_for_publish(10)
        proc = subprocess.Popen(
            [*EDGEGEN_RECORD, "--broker", mosquitto.url, "--topic", f"{base}/#", "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("EDGEGEN_")}, "COLUMNS": "200"},
        )
        try:
            deadline = time.monotonic() + 20
            while not (out.exists() and len(read_capture(out).records) == 1):
                assert proc.poll() is None and time.monotonic() < deadline, "the recorder did not record"
                time.sleep(0.05)
            client.publish(f"{base}/y", b"\x03", qos=1).wait_for_publish(10)
            deadline = time.monotonic() + 30
            while len(read_capture(out).records) < 2:  # flushed per message: readable while recording
                assert time.monotonic() < deadline, "the second message was not recorded"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, output
        assert "interrupted" in output
        assert f"2 messages, 3 payload bytes ({out.stat().st_size} file bytes)" in output
        assert rows(read_capture(out).records) == [
            (f"{base}/x", 1, True, b"\x01\x02"),
            (f"{base}/y", 1, False, b"\x03"),
        ]
    finally:
        client.publish(f"{base}/x", b"", qos=1, retain=True).wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
