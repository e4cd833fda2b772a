"""The fault proxy between real clients and the real mosquitto: loss a firmware node recovers from, delay,
byte-exact relaying, prompt close, parameter checks, and resets or half-closes that leave it serving."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgegen.firmware_py.app import NodeApp
from edgegen.firmware_py.config import validate
from edgegen.gateway.protocol.frame import decode
from edgegen.simulators.errors import NetFaultsError, SimulationSpecError
from edgegen.simulators.netfaults import FaultProxy, NetFaults
from tests.support.collector import Collector
from tests.support.firmware_node import node_config
from tests.support.servers import Mosquitto, free_port

pytestmark = pytest.mark.mosquitto


def _until(done: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.01)


class _Paho:
    """A paho client whose connects and disconnects the test can wait for."""

    def __init__(self, client_id: str) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()


@contextmanager
def _paho(proxy: FaultProxy, client_id: str) -> Iterator[_Paho]:
    p = _Paho(client_id)
    p.client.connect("127.0.0.1", proxy.port, keepalive=60)
    p.client.loop_start()
    try:
        assert p.connected.wait(15), "no CONNACK through the proxy"
        yield p
    finally:
        p.client.disconnect()
        p.client.loop_stop()


@pytest.mark.slow
def test_a_firmware_node_delivers_every_frame_through_loss_and_cuts(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """20 % of the node's PUBLISHes are lost and the link is cut every second: QoS 1 with DUP resends on the
    kept session gets every frame through, byte-identical, and each loss is exactly the one the seed decided."""
    frames = 100
    faults = NetFaults(loss=0.2, disconnect_every_s=1.0, seed=7)
    topic = "edgegen/v1/fw/netloss/data/vib"
    with (
        Collector(mosquitto.url, topic, "c-netloss") as sub,
        FaultProxy("127.0.0.1", mosquitto.port, faults) as proxy,
    ):
        raw = node_config(
            tmp_path / "n",
            proxy.port,
            node_id="netloss",
            speed=20,  # a frame every 25 ms: the run lasts >= 2.5 s however fast the machine, so cuts fall in it
            outbox={"slots": 2 * frames},  # no frame is overwritten while the link is down
            mqtt={
                "ack_timeout_ms": 300,
                "timeout_ms": 2000,
                "backoff_min_ms": 20,
                "backoff_max_ms": 100,
                "max_dup_retries": 100,  # always resume the session: every resend is a DUP of the same packet
            },
        )
        (tmp_path / "n").mkdir()
        app: Any = NodeApp(validate(raw))
        try:
            assert app.run(frames, 30_000) == frames
            assert app.uplink.flush(0)
        finally:
            app.close()
        _until(lambda: proxy.active == 0, "the proxy closes the node's last connection")
        _until(lambda: {decode(m.payload).seq for m in sub.on(topic)} == set(range(frames)), "every seq arrives")
        got = sub.on(topic)
        dropped = proxy.dropped
        seen = proxy.publishes_seen
        assert proxy.failure is None
    first: dict[int, bytes] = {}
    for m in got:
        first.setdefault(decode(m.payload).seq, m.payload)
    assert all(m.payload == first[decode(m.payload).seq] for m in got)  # extras are resends of the same frame
    assert len(got) - frames <= app.uplink.duplicates_sent
    assert (app.outbox.dropped, app.outbox.depth(), app.uplink.inflight) == (0, 0, 0)
    lost = faults.lost(seen)
    assert [d.index for d in dropped] == [i for i, x in enumerate(lost) if x]
    assert proxy.publishes_dropped == len(dropped) == sum(lost) > 0
    data = [d for d in dropped if d.topic == topic]
    assert data, "no data frame was lost: the test proves nothing"
    assert {d.payload for d in data} <= set(first.values())  # every lost frame came through later
    assert all(d.packet_id is not None for d in data)
    assert app.uplink.duplicates_sent >= len(data)  # each loss was recovered by a DUP resend
    assert proxy.disconnects >= 1
    assert app.uplink.connects >= 2
    assert proxy.connections >= app.uplink.connects  # a cut can also fall between accept and CONNACK


def test_delay_applies_in_both_directions(mosquitto: Mosquitto) -> None:
    with FaultProxy("127.0.0.1", mosquitto.port, NetFaults(delay_ms=100)) as proxy, _paho(proxy, "nf-delay") as p:
        start = time.monotonic()
        info = p.client.publish("nf/delay", b"x", qos=1)
        info.wait_for_publish(15)
        elapsed = time.monotonic() - start
    assert info.is_published()
    assert elapsed >= 0.2  # PUBLISH one way, PUBACK the other: 100 ms each, however busy the machine


def test_jitter_keeps_the_order_of_packets(mosquitto: Mosquitto) -> None:
    topic = "nf/jitter"
    faults = NetFaults(delay_ms=20, jitter_ms=20, seed=3)
    with Collector(mosquitto.url, topic, "c-nf-jitter") as sub:
        with FaultProxy("127.0.0.1", mosquitto.port, faults) as proxy:
            with _paho(proxy, "nf-jitter") as p:
                infos = [p.client.publish(topic, struct.pack(">I", i), qos=1) for i in range(50)]
                for info in infos:
                    info.wait_for_publish(5)
            _until(lambda: proxy.active == 0, "the proxy closes the connection")
            # CONNECT, CONNACK, 50 x (PUBLISH, PUBACK), DISCONNECT
            assert (proxy.packets_forwarded, proxy.publishes_seen, proxy.publishes_dropped) == (103, 50, 0)
        got = sub.wait_for(topic, 50, timeout_s=10)
    assert [struct.unpack(">I", m.payload)[0] for m in got] == list(range(50))


def test_without_faults_bytes_pass_unchanged(mosquitto: Mosquitto) -> None:
    topic = "nf/exact"
    payload = bytes(range(256)) * 800  # 204800 bytes: a 3-byte remaining length, many reads and writes
    with Collector(mosquitto.url, topic, "c-nf-exact") as sub:
        with FaultProxy("127.0.0.1", mosquitto.port, NetFaults()) as proxy:
            with _paho(proxy, "nf-exact") as p:
                p.client.publish(topic, payload, qos=1).wait_for_publish(5)
            _until(lambda: proxy.active == 0, "the proxy closes the connection")
            counters = (
                proxy.connections,
                proxy.packets_forwarded,
                proxy.publishes_seen,
                proxy.publishes_dropped,
                proxy.disconnects,
            )
        got = sub.wait_for(topic, 1, timeout_s=10)
    assert counters == (1, 5, 1, 0, 0)  # CONNECT, CONNACK, PUBLISH, PUBACK, DISCONNECT
    assert [m.payload for m in got] == [payload]


def _connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack(">H", len(cid)) + cid  # 3.1.1, clean, no keepalive
    return bytes([0x10, len(body)]) + body


def _read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def _hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed without sending anything (a reset: it closed with our bytes unread)."""
    try:
        return _read_to_eof(sock) == b""
    except ConnectionResetError:
        return True


@pytest.mark.slow
def test_close_with_live_connections_stops_the_proxy_promptly(mosquitto: Mosquitto) -> None:
    proxy = FaultProxy("127.0.0.1", mosquitto.port, NetFaults(delay_ms=50))
    proxy.start()
    with (
        _paho(proxy, "nf-close") as p,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw,
    ):
        raw.sendall(_connect_packet("nf-close-raw"))
        assert raw.recv(4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
        assert proxy.active == 2
        start = time.monotonic()
        proxy.close()
        assert time.monotonic() - start < 5.0  # close waits at most 1 s for the loop; busy machines add to it
        assert not proxy.running  # ... and the loop did end in that time: it is not left running
        assert p.disconnected.wait(15), "the paho client did not see the connection close"
        assert _read_to_eof(raw) == b""
    assert (proxy.active, proxy.disconnects) == (0, 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"loss": -0.1}, "loss"),
        ({"loss": 1.0}, "loss"),
        ({"loss": float("nan")}, "loss"),
        ({"delay_ms": -1}, "delay_ms"),
        ({"delay_ms": float("inf")}, "delay_ms"),
        ({"jitter_ms": -5}, "jitter_ms"),
        ({"disconnect_every_s": 0}, "disconnect_every_s"),
        ({"disconnect_every_s": -2.0}, "disconnect_every_s"),
        ({"seed": 1.5}, "seed"),
        ({"loss": True}, "loss"),
    ],
)
def test_bad_parameters_raise_value_error_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: expected ") as caught:
        NetFaults(**kwargs)
    assert isinstance(caught.value, NetFaultsError)
    assert isinstance(caught.value, SimulationSpecError)  # the simulators' CLI reports it as a bad option
    assert caught.value.option == field


def test_resets_half_closes_and_garbage_leave_the_proxy_serving(mosquitto: Mosquitto) -> None:
    with FaultProxy("127.0.0.1", mosquitto.port, NetFaults()) as proxy:
        reset = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        reset.sendall(_connect_packet("nf-reset")[:7])  # half a packet, then a reset
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as garbage:
            garbage.sendall(b"\x10\xff\xff\xff\xff\x01")  # a remaining length of 5 bytes: not MQTT
            assert _hung_up(garbage)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as half:
            half.sendall(_connect_packet("nf-half"))
            half.shutdown(socket.SHUT_WR)  # the broker still answers, then closes on our EOF
            assert _read_to_eof(half) == b"\x20\x02\x00\x00"
        _until(lambda: proxy.active == 0, "the proxy closes all three")
        with _paho(proxy, "nf-after") as p:
            info = p.client.publish("nf/after", b"ok", qos=1)
            info.wait_for_publish(5)
            assert info.is_published()
        _until(lambda: proxy.active == 0, "the proxy closes the last connection")
        assert (proxy.connections, proxy.packets_forwarded, proxy.failure) == (4, 2 + 5, None)


def test_an_unreachable_broker_closes_the_client_not_the_proxy() -> None:
    with FaultProxy("127.0.0.1", free_port(), NetFaults()) as proxy:  # nothing listens upstream
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
                raw.sendall(_connect_packet("nf-refused"))
                assert _hung_up(raw)
        _until(lambda: proxy.active == 0, "the proxy drops both")
        assert (proxy.connections, proxy.packets_forwarded, proxy.running, proxy.failure) == (2, 0, True, None)
