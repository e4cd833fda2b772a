"""Storage faults on real servers: a stalled InfluxDB, and points InfluxDB refuses."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from edgegen.gateway.config import Settings
from edgegen.gateway.storage.influx1 import Influx1Storage
from tests.support.pipeline import GatewayThread, checksum, node_settings, publish_frames, sample_lines
from tests.support.servers import InfluxDB, Mosquitto

pytestmark = [pytest.mark.mosquitto, pytest.mark.influxdb, pytest.mark.e2e]

WEEK_US = 7 * 24 * 3600 * 1_000_000


def _settings(mosquitto: Mosquitto, influxdb: InfluxDB, site: str, state_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": f"gw-{site}", "site": site},
            "storage": {"kind": "influx1", "influx_url": influxdb.url, "database": "faults", "timeout_s": 1.0},
            "gateway": {"state_dir": str(state_dir), "flush_interval_s": 0.05, "http_port": 0},  # 0: a free port
        }
    )


def _stored_lines(influxdb: InfluxDB, node: str) -> list[str]:
    async def go() -> list[str]:
        storage = Influx1Storage(influxdb.url, "faults", create_database=False)
        await storage.open()
        try:
            results = await storage.query(f"SELECT * FROM samples WHERE node = '{node}'")
        finally:
            await storage.close()
        lines = []
        for series in results[0].get("series", []):
            for row in series["values"]:
                rec = dict(zip(series["columns"], row, strict=True))
                lines += [
                    f"{rec['time']} {k} {v!r}" for k, v in rec.items() if k.startswith("c") and v is not None
                ]
        return lines

    return asyncio.run(go())


def test_writes_wait_out_a_stalled_influxdb(
    mosquitto: Mosquitto, private_influxdb: InfluxDB, state_dir: Path
) -> None:
    site = "stall"
    nodes = node_settings(site, 3)
    with GatewayThread(_settings(mosquitto, private_influxdb, site, state_dir)) as gw:
        private_influxdb.pause()  # SIGSTOP: connections hang, every write times out
        resumer = threading.Timer(4.0, private_influxdb.resume)
        resumer.start()
        sent = publish_frames(mosquitto.url, nodes, 20, 1_750_000_000_000_000)
        gw.wait_stored(60, timeout_s=90)
        resumer.join()
    assert gw.gateway.metrics.value("edgegen_writer_retries_total", reason="unavailable") >= 1
    assert gw.gateway.metrics.rejects_by_cause() == {}
    for node in nodes:
        assert checksum(_stored_lines(private_influxdb, node.node_id)) == checksum(
            sample_lines(site, "vib", sent[node.node_id])
        )


def test_a_frame_influxdb_refuses_is_dead_lettered_and_its_batch_mates_are_stored(
    mosquitto: Mosquitto, private_influxdb: InfluxDB, state_dir: Path
) -> None:
    site = "poison"
    t0_good = 1_750_000_000_000_000
    t0_poison = t0_good + 4 * WEEK_US  # another shard, where c0 already holds strings: a type conflict

    # A string c0 in the poison frame's shard: InfluxDB will refuse float c0 there ("field type conflict").
    private_influxdb.create_database("faults")
    private_influxdb.write("faults", f'samples,node=other c0="text" {t0_poison}')
    settings = _settings(mosquitto, private_influxdb, site, state_dir)
    settings = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"flush_interval_s": 1.0})}  # one batch for all
    )
    good_nodes = node_settings(site, 2)
    poison_node = node_settings(site, 3)[2:]
    with GatewayThread(settings):
        pass  # leave a persistent session behind, so the next start receives everything at once: one batch
    poison = publish_frames(mosquitto.url, poison_node, 1, t0_poison)
    good = publish_frames(mosquitto.url, good_nodes, 5, t0_good)
    with GatewayThread(settings) as gw:
        gw.wait_received(11)
        deadline = time.monotonic() + 30
        while gw.gateway.stored_frames < 10 or not gw.gateway.metrics.rejects_by_cause():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    metrics = gw.gateway.metrics
    assert metrics.value("edgegen_frames_stored_total") == 10
    assert metrics.rejects_by_cause() == {"storage_rejected": 1}
    assert metrics.value("edgegen_writer_dead_lettered_total", cause="storage_rejected") == 1
    for node in good_nodes:
        assert checksum(_stored_lines(private_influxdb, node.node_id)) == checksum(
            sample_lines(site, "vib", good[node.node_id])
        )
    assert _stored_lines(private_influxdb, "node-2") == []
    with sqlite3.connect(state_dir / "dead-letters.sqlite") as conn:
        [(topic, cause, detail, payload)] = conn.execute("SELECT topic, cause, detail, payload FROM dead_letters")
    assert (topic, cause) == (f"edgegen/v1/{site}/node-2/data/vib", "storage_rejected")
    assert "field type conflict" in detail
    assert payload == poison["node-2"][0]
