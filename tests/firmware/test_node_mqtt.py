"""The node's MQTT path under the real MicroPython unix port: firmware_py.app -> outbox -> mqtt -> broker."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from edgegen.gateway.protocol import decode
from tests.support.certs import make_ca, server_certs
from tests.support.collector import Collector
from tests.support.firmware_node import node_config, run_node, start_node
from tests.support.micropython import run_micropython
from tests.support.scripted_broker import Script, ScriptedBroker
from tests.support.servers import Mosquitto, free_port

pytestmark = [pytest.mark.micropython, pytest.mark.mosquitto]

TOPIC = "edgegen/v1/fw/{node}/data/vib"
WINDOW_US = 50 * 10_000


def _seqs(messages: list) -> list[int]:  # type: ignore[type-arg]
    return [decode(m.payload).seq for m in messages]


def test_every_frame_arrives_once_in_order(mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = node_config(tmp_path / "n", mosquitto.port, node_id="order")
    topic = TOPIC.format(node="order")
    with Collector(mosquitto.url, topic, "c-order") as sub:
        stats = run_node(cfg, 300)
        got = sub.wait_for(topic, 300)
    assert (stats["frames"], stats["sent"], stats["acked"], stats["dropped"], stats["depth"]) == (
        300,
        300,
        300,
        0,
        0,
    )
    assert _seqs(got) == list(range(300))
    frames = [decode(m.payload) for m in got]
    assert all(f.t0_us == frames[0].t0_us + i * WINDOW_US for i, f in enumerate(frames))
    assert not any(m.dup for m in got)


@pytest.mark.slow
def test_broker_restart_while_publishing_leaves_no_sequence_gap(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    try:
        topic = TOPIC.format(node="restart")
        cfg = node_config(tmp_path / "n", broker.port, node_id="restart", speed=10)  # a frame every 50 ms
        with Collector(broker.url, topic, "c-restart") as sub:
            node = start_node(cfg, 120, drain_ms=30_000)
            sub.wait_for(topic, 20)
            broker.stop()  # SIGTERM: mosquitto saves the collector's session
            time.sleep(2.0)
            broker.start()
            out, err = node.communicate(timeout=120)
            assert node.returncode == 0, err
            stats = json.loads(out.strip().splitlines()[-1])
            deadline = time.monotonic() + 60
            while set(_seqs(sub.on(topic))) != set(range(120)) and time.monotonic() < deadline:
                time.sleep(0.1)
        seqs = _seqs(sub.on(topic))
    finally:
        broker.stop()
    assert set(seqs) == set(range(120)), f"missing {sorted(set(range(120)) - set(seqs))}"
    assert stats["connects"] >= 2
    assert (stats["dropped"], stats["depth"], stats["inflight"]) == (0, 0, 0)


def test_dropped_connection_after_publish_gets_dup_with_the_same_packet_id(tmp_path: Path) -> None:
    """R1: the broker closes the connection right after the node's PUBLISH, three times with the session kept.
    The node republishes with DUP and the same packet id; after its retry limit (2) it starts a clean session
    and sends the message again with a new id."""
    script = Script(session_present=[False, True, True, False], drop_first_publish=[True, True, True, False])
    with ScriptedBroker(script) as broker:
        cfg = node_config(tmp_path / "n", broker.port, node_id="r1", mqtt={"max_dup_retries": 2, "keepalive_s": 0})
        stats = run_node(cfg, 1, drain_ms=20_000)
    data = [p for p in broker.publishes if p.qos == 1]
    assert [(c.connection, c.clean_session) for c in broker.connects] == [
        (0, False),
        (1, False),
        (2, False),
        (3, True),
    ]
    first_pid = data[0].pid
    assert [(p.connection, p.dup, p.pid == first_pid) for p in data] == [
        (0, False, True),
        (1, True, True),
        (2, True, True),
        (3, False, False),
    ]
    assert len({p.payload for p in data}) == 1
    assert decode(data[0].payload).seq == 0
    assert (stats["acked"], stats["depth"], stats["duplicates_sent"]) == (1, 0, 2)


def test_connect_carries_keepalive_and_retained_will(tmp_path: Path) -> None:
    script = Script(session_present=[False], drop_first_publish=[False])
    with ScriptedBroker(script) as broker:
        cfg = node_config(tmp_path / "n", broker.port, node_id="ka", mqtt={"keepalive_s": 7})
        run_node(cfg, 1, drain_ms=5_000)
    connect = broker.connects[0]
    assert (connect.client_id, connect.clean_session, connect.keepalive) == ("edgegen-fw-ka", False, 7)
    assert (connect.will_topic, connect.will_qos, connect.will_retain) == ("edgegen/v1/fw/ka/status", 1, True)
    assert connect.will_message is not None
    assert json.loads(connect.will_message) == {"state": "offline", "fw": "0.1.0"}


def test_frames_made_while_the_broker_is_down_wait_in_the_outbox_across_a_reboot(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    topic = TOPIC.format(node="reboot")
    state = tmp_path / "n"
    offline = node_config(state, free_port(), node_id="reboot")  # nothing listens there
    stats = run_node(offline, 30, drain_ms=0, hard=True)  # then "power off": no clean shutdown
    assert (stats["frames"], stats["acked"], stats["depth"], stats["next_seq"]) == (30, 0, 30, [30])
    online = node_config(state, mosquitto.port, node_id="reboot")
    with Collector(mosquitto.url, topic, "c-reboot") as sub:
        stats = run_node(online, 20)
        got = sub.wait_for(topic, 50)
    assert stats["first_seq"] == [30]  # continued from the newest frame in the outbox: no gap, no reuse
    assert sorted(_seqs(got)) == list(range(50))
    assert (stats["acked"], stats["depth"], stats["dropped"]) == (50, 0, 0)


def test_a_full_outbox_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    cfg = node_config(tmp_path / "n", free_port(), node_id="full", outbox={"slots": 8})
    stats = run_node(cfg, 20, drain_ms=0)
    assert (stats["depth"], stats["dropped"]) == (8, 12)


@pytest.mark.slow
def test_last_will_says_offline_after_the_keepalive(tmp_path: Path) -> None:
    """R5: the node freezes with its socket open (SIGSTOP: no FIN, no more pings); the broker gives up on it and
    publishes its retained will. MQTT asks the broker to act after 1.5 keepalives; mosquitto 2.0.11 files a
    client's deadline lazily and re-files it when it finds newer traffic, so it can take up to twice that (3 s
    to 6 s measured here for a 2 s keepalive; more on a loaded machine). The node's side -- keepalive and will in
    CONNECT -- is checked byte for byte in test_connect_carries_keepalive_and_retained_will."""
    broker = Mosquitto(tmp_path / "broker")  # its own, so no other test's traffic shares its loop
    broker.start()
    status = "edgegen/v1/fw/will/status"
    keepalive = 2
    cfg = node_config(tmp_path / "n", broker.port, node_id="will", speed=1, mqtt={"keepalive_s": keepalive})
    try:
        with Collector(broker.url, status, "c-will") as sub:
            node = start_node(cfg, None)
            try:
                sub.wait_for(status, 1)
                assert json.loads(sub.on(status)[0].payload)["state"] == "online"
                node.send_signal(signal.SIGSTOP)
                frozen = time.monotonic()
                sub.wait_for(status, 2, timeout_s=30)
                elapsed = time.monotonic() - frozen
            finally:
                node.send_signal(signal.SIGKILL)
                node.communicate(timeout=10)
    finally:
        broker.stop()
    assert json.loads(sub.on(status)[-1].payload)["state"] == "offline"
    assert 1.0 <= elapsed <= 2 * 1.5 * keepalive + 6.0, elapsed  # not at once: the socket stayed open


def test_wrong_password_is_refused_and_frames_stay_in_the_outbox(tmp_path: Path) -> None:
    """R6 (credentials): the broker refuses the node; nothing is lost, the reason is recorded."""
    broker = Mosquitto(tmp_path / "broker", passwords={"node": "right"})
    broker.start()
    try:
        cfg = node_config(tmp_path / "n", broker.port, node_id="auth", mqtt={"user": "node", "password": "wrong"})
        refused = run_node(cfg, 5, drain_ms=500)
        assert (refused["acked"], refused["depth"]) == (0, 5)
        assert "code 5" in refused["last_error"]  # CONNACK 5: not authorised
        cfg["mqtt"]["password"] = "right"
        accepted = run_node(cfg, 0)
    finally:
        broker.stop()
    assert (accepted["acked"], accepted["depth"]) == (5, 0)


def test_outbox_ring_order_persistence_and_corruption(tmp_path: Path) -> None:
    result = json.loads(run_micropython("outbox_checks.py", str(tmp_path)))
    assert (result["full_depth"], result["dropped"]) == (4, 6)  # 10 into 4 slots: the 6 oldest overwritten
    assert result["after_reopen_depth"] == 4
    assert result["oldest_first"] == [6, 7, 8, 9]
    assert result["newest_first"] == [4, 3, 2, 1, 0]
    assert (result["corrupt"], result["survivors"]) == (1, [0, 1, 3, 4])
    assert result["newest_seq_source"] == int.from_bytes(bytes([4]) * 4, "little")  # bytes 8-11 of message 4
    assert result["oversize"] == "message larger than an outbox slot"


def test_the_whole_node_path_allocates_nothing_per_window(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """900 windows of the main loop -- test signal, frame, outbox write, PUBLISH, PUBACK, status tick: 0 bytes."""
    result = json.loads(run_micropython("steady_state_uplink.py", str(mosquitto.port), str(tmp_path)))
    assert (result["windows"], result["bytes"], result["dropped"], result["connects"]) == (900, 0, 0, 1)
    assert result["acked"] == 930


@pytest.mark.slow
def test_tls_with_the_right_ca_delivers_and_a_wrong_ca_is_refused(tmp_path: Path) -> None:
    """R6 (certificates): the node verifies the broker against its configured CA; a broker signed by another
    CA is refused, and the frames wait in the outbox."""
    certs = server_certs(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "broker", tls=(certs.ca, certs.cert, certs.key))
    broker.start()
    try:
        stranger = make_ca(tmp_path / "other", "stranger")
        cfg = node_config(
            tmp_path / "n",
            broker.port,
            node_id="tls",
            mqtt={"host": "localhost", "tls": True, "ca": str(stranger.with_suffix(".der"))},
        )
        refused = run_node(cfg, 3, drain_ms=500)
        assert (refused["acked"], refused["depth"]) == (0, 3)
        assert "TLS handshake: The certificate is not correctly signed by the trusted CA" in refused["last_error"]
        cfg["mqtt"]["ca"] = str(certs.ca.with_suffix(".der"))
        accepted = run_node(cfg, 2)
    finally:
        broker.stop()
    assert (accepted["acked"], accepted["depth"], accepted["first_seq"]) == (5, 0, [3])


@pytest.mark.slow
def test_a_reconnecting_node_drains_its_backlog_at_the_configured_rate(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """40 frames wait in the outbox; after reconnecting the node sends a burst of 5, then 20 per second."""
    topic = TOPIC.format(node="drain")
    state = tmp_path / "n"
    offline = node_config(state, free_port(), node_id="drain", mqtt={"drain_per_s": 20, "burst": 5})
    run_node(offline, 40, drain_ms=0, hard=True)
    online = node_config(state, mosquitto.port, node_id="drain", mqtt={"drain_per_s": 20, "burst": 5})
    with Collector(mosquitto.url, topic, "c-drain") as sub:
        started = time.monotonic()
        stats = run_node(online, 0, drain_ms=10_000)
        sub.wait_for(topic, 40)
        took = time.monotonic() - started
    assert (stats["acked"], stats["depth"]) == (40, 0)
    assert took >= (40 - 5) / 20 * 0.9  # 1.75 s at the configured rate, less a little timer slack
    assert sorted(_seqs(sub.on(topic))) == list(range(40))
