"""Virtual nodes -> real mosquitto -> gateway -> real InfluxDB 1.6.7 or SQLite: every value exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgegen.gateway.config import Settings
from edgegen.gateway.fleet import REGISTRY_FILE, NodeTraffic, read_entries
from edgegen.gateway.protocol import data_topic, decode, decode_message, encode
from edgegen.gateway.protocol.jsonform import to_json
from edgegen.gateway.spool import Incoming, Spool
from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.simulators.faults import malformed_messages
from tests.support.pipeline import GatewayThread, checksum, node_settings, publish_frames, sample_lines
from tests.support.servers import InfluxDB, Mosquitto

pytestmark = [pytest.mark.mosquitto, pytest.mark.e2e]

N_NODES = 5
FRAMES = 40
WINDOW = 50
CHANNELS = 3
T0_US = 1_750_000_000_000_000


def _settings(mosquitto: Mosquitto, site: str, state_dir: Path, **storage: Any) -> Settings:
    return Settings.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": f"gw-{site}", "site": site},
            "storage": storage,
            "gateway": {"state_dir": str(state_dir), "flush_interval_s": 0.05, "http_port": 0},  # 0: a free port
        }
    )


def _influx_lines(influxdb: InfluxDB, database: str, site: str, node: str) -> list[str]:
    async def go() -> list[dict[str, Any]]:
        storage = Influx1Storage(influxdb.url, database, create_database=False)
        await storage.open()
        try:
            return await storage.query(f"SELECT * FROM samples WHERE site = '{site}' AND node = '{node}'")
        finally:
            await storage.close()

    series = asyncio.run(go())[0].get("series", [])
    lines = []
    for s in series:
        columns = s["columns"]
        for row in s["values"]:
            record = dict(zip(columns, row, strict=True))
            lines += [
                f"{record['time']} c{c} {record[f'c{c}']!r}"
                for c in range(CHANNELS)
                if record[f"c{c}"] is not None
            ]
    return lines


def _sqlite_lines(path: Path, site: str, node: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT ts_us, field, value FROM points WHERE site = ? AND node = ? AND measurement = 'samples'",
            (site, node),
        ).fetchall()
    return [f"{ts} {field} {value!r}" for ts, field, value in rows]


@pytest.mark.influxdb
def test_nodes_through_mosquitto_into_influxdb_exactly_once(
    mosquitto: Mosquitto, influxdb: InfluxDB, influx_database: str, state_dir: Path
) -> None:
    site = "e2e-influx"
    settings = _settings(
        mosquitto, site, state_dir, kind="influx1", influx_url=influxdb.url, database=influx_database
    )
    nodes = node_settings(site, N_NODES, CHANNELS, WINDOW)
    with GatewayThread(settings) as gw:
        sent = publish_frames(mosquitto.url, nodes, FRAMES, T0_US)
        gw.wait_stored(N_NODES * FRAMES)
    assert gw.gateway.metrics.rejects_by_cause() == {}
    for node in nodes:
        expected = checksum(sample_lines(site, "vib", sent[node.node_id]))
        assert expected[0] == FRAMES * WINDOW * CHANNELS
        assert checksum(_influx_lines(influxdb, influx_database, site, node.node_id)) == expected, node.node_id


def test_nodes_through_mosquitto_into_sqlite_exactly_once(
    mosquitto: Mosquitto, state_dir: Path, tmp_path: Path
) -> None:
    site = "e2e-sqlite"
    db = tmp_path / "e2e.sqlite"
    settings = _settings(mosquitto, site, state_dir, kind="sqlite", sqlite_path=str(db))
    nodes = node_settings(site, N_NODES, CHANNELS, WINDOW)
    with GatewayThread(settings) as gw:
        sent = publish_frames(mosquitto.url, nodes, FRAMES, T0_US)
        gw.wait_stored(N_NODES * FRAMES)
    traffic = gw.gateway.registry.traffic()
    for node in nodes:
        expected = checksum(sample_lines(site, "vib", sent[node.node_id]))
        assert expected[0] == FRAMES * WINDOW * CHANNELS
        assert checksum(_sqlite_lines(db, site, node.node_id)) == expected, node.node_id
        assert traffic[(site, node.node_id)] == NodeTraffic(frames_stored=FRAMES, values_stored=expected[0])
    assert gw.gateway.metrics.value("edgegen_values_stored_total") == N_NODES * FRAMES * WINDOW * CHANNELS
    # the counters reach the registry file too: `edgegen nodes` shows them after the gateway stopped
    on_disk = read_entries(state_dir / REGISTRY_FILE, time.time_ns() // 1000)
    assert [(e.node, e.frames_stored, e.values_stored, e.frames_rejected) for e in on_disk] == [
        (node.node_id, FRAMES, FRAMES * WINDOW * CHANNELS, 0) for node in nodes
    ]


def _publish_raw(url: str, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-raw-publisher")
    host, port = url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_malformed_frames_are_rejected_by_cause_while_valid_traffic_is_stored(
    mosquitto: Mosquitto, state_dir: Path, tmp_path: Path
) -> None:
    site = "e2e-bad"
    db = tmp_path / "bad.sqlite"
    settings = _settings(mosquitto, site, state_dir, kind="sqlite", sqlite_path=str(db))
    nodes = node_settings(site, 2, CHANNELS, WINDOW)
    rounds = 3
    with GatewayThread(settings) as gw:
        sent = publish_frames(mosquitto.url, nodes, 10, T0_US)
        bad = malformed_messages(decode(sent["node-0"][0]), other_node="node-1")
        topic = str(data_topic(site, "node-0", "vib"))
        reserved = f"edgegen/v1/{site}/_x/data/vib"  # matches the subscription, but "_x" is no node id
        _publish_raw(mosquitto.url, [(topic, payload) for _ in range(rounds) for payload in bad.values()])
        _publish_raw(mosquitto.url, [(reserved, sent["node-0"][0])])
        more = publish_frames(mosquitto.url, nodes[:1], 5, T0_US + 10_000_000)
        received = 25 + rounds * len(bad) + 1
        gw.wait_stored(25)
        gw.wait_received(received)
        time.sleep(0.2)  # let anything unexpected arrive before counting
    metrics = gw.gateway.metrics
    assert metrics.rejects_by_cause() == {**dict.fromkeys(bad, rounds), "bad_topic": 1}
    assert metrics.value("edgegen_messages_received_total") == received
    assert metrics.value("edgegen_frames_accepted_total") == 25
    assert metrics.value("edgegen_frames_stored_total") == 25
    traffic = gw.gateway.registry.traffic()
    assert traffic[(site, "node-0")] == NodeTraffic(15, 15 * WINDOW * CHANNELS, frames_rejected=rounds * len(bad))
    assert traffic[(site, "node-1")] == NodeTraffic(10, 10 * WINDOW * CHANNELS, frames_rejected=0)
    assert len(traffic) == 2  # the reserved id "_x" is no node: its rejection is counted by cause only

    valid = sent["node-0"] + more["node-0"]
    assert checksum(_sqlite_lines(db, site, "node-0")) == checksum(sample_lines(site, "vib", valid))
    assert checksum(_sqlite_lines(db, site, "node-1")) == checksum(sample_lines(site, "vib", sent["node-1"]))

    with sqlite3.connect(state_dir / "dead-letters.sqlite") as conn:
        rows = conn.execute("SELECT topic, cause, size, payload FROM dead_letters ORDER BY id").fetchall()
    expected = [(topic, cause, payload) for _ in range(rounds) for cause, payload in bad.items()]
    expected.append((reserved, "bad_topic", sent["node-0"][0]))
    assert [(t, c, p) for t, c, _, p in rows] == expected
    assert [size for _, _, size, _ in rows] == [len(p) for _, _, p in expected]


def test_frames_published_while_the_gateway_is_away_wait_in_its_persistent_session(
    mosquitto: Mosquitto, state_dir: Path, tmp_path: Path
) -> None:
    site = "e2e-session"
    db = tmp_path / "session.sqlite"
    settings = _settings(mosquitto, site, state_dir, kind="sqlite", sqlite_path=str(db))
    nodes = node_settings(site, 3, CHANNELS, WINDOW)
    with GatewayThread(settings):
        pass  # the broker now holds the gateway's session and subscription
    sent = publish_frames(mosquitto.url, nodes, 20, T0_US)  # nobody is listening
    with GatewayThread(settings) as gw:
        gw.wait_stored(60)
    for node in nodes:
        assert checksum(_sqlite_lines(db, site, node.node_id)) == checksum(
            sample_lines(site, "vib", sent[node.node_id])
        )


def test_frames_left_in_the_spool_by_a_crash_are_stored_at_the_next_start_binary_and_json_alike(
    mosquitto: Mosquitto, state_dir: Path, tmp_path: Path
) -> None:
    """What a killed gateway had acknowledged sits in its spool; the next start decodes it from the spool's bytes
    (no in-memory copy survives), in either wire form."""
    site = "e2e-respool"
    db = tmp_path / "respool.sqlite"
    sent = publish_frames(mosquitto.url, node_settings(site, 1, CHANNELS, WINDOW), 4, T0_US)["node-0"]
    topic = str(data_topic(site, "node-0", "vib"))
    payloads = [sent[0], sent[1], to_json(decode(sent[2])).encode(), to_json(decode(sent[3])).encode()]
    spool = Spool(state_dir / "spool.sqlite")
    frames = [decode_message(p) for p in payloads]
    spool.add(
        [Incoming(site, "node-0", "vib", f.seq, topic, p, f.t0_us) for f, p in zip(frames, payloads, strict=True)]
    )
    spool.close()
    with GatewayThread(_settings(mosquitto, site, state_dir, kind="sqlite", sqlite_path=str(db))) as gw:
        gw.wait_stored(4)
    assert gw.gateway.metrics.rejects_by_cause() == {}
    stored = _sqlite_lines(db, site, "node-0")
    assert checksum(stored) == checksum(sample_lines(site, "vib", [encode(f) for f in frames]))
