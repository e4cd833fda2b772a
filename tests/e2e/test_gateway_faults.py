"""Faults injected into real processes while nodes publish (docs/reliability.md: R3, R4, R8 and R21, scale-out).

Every test runs the gateway as ``edgegen gateway run`` in its own process, publishes with virtual nodes (the
firmware's NodeApp: outbox, QoS 1), injects the fault mid-stream, and then asserts that InfluxDB holds exactly what
the nodes sent: per node, the same (timestamp, field, value) lines — no gap, no duplicate, nothing extra.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgegen.gateway.storage.influx1 import Influx1Storage
from edgegen.models import shipped
from tests.support.gateway_process import GatewayProcess, Publishers
from tests.support.pipeline import checksum, node_settings, publish_frames, sample_lines
from tests.support.servers import InfluxDB, Mosquitto

pytestmark = [pytest.mark.mosquitto, pytest.mark.influxdb, pytest.mark.e2e]

T0_US = 1_760_000_000_000_000
SPEED = 10.0  # 50-sample windows at 100 Hz: 20 frames/s per node


def _sections(mqtt_url: str, influx_url: str, database: str, site: str, **mqtt: Any) -> dict[str, dict[str, Any]]:
    return {
        "mqtt": {"url": mqtt_url, "client_id": f"gw-{site}", "site": site, **mqtt},
        "storage": {"kind": "influx1", "influx_url": influx_url, "database": database, "timeout_s": 2.0},
        "gateway": {"flush_interval_s": 0.05},
        "analytics": {"enabled": False},
    }


def _stored_lines(influx_url: str, database: str, site: str) -> dict[str, list[str]]:
    async def go() -> dict[str, list[str]]:
        storage = Influx1Storage(influx_url, database, create_database=False)
        await storage.open()
        try:
            results = await storage.query(f"SELECT * FROM samples WHERE site = '{site}' GROUP BY node")
        finally:
            await storage.close()
        out: dict[str, list[str]] = {}
        for series in results[0].get("series", []):
            lines = out.setdefault(series["tags"]["node"], [])
            for row in series["values"]:
                rec = dict(zip(series["columns"], row, strict=True))
                lines += [  # JSON gives 0.0 back as 0
                    f"{rec['time']} {k} {float(v)!r}" for k, v in rec.items() if k[:1] == "c" and v is not None
                ]
        return out

    return asyncio.run(go())


def _stored_count(influx_url: str, database: str, site: str) -> int:
    async def go() -> int:
        storage = Influx1Storage(influx_url, database, create_database=False)
        await storage.open()
        try:
            return sum((await storage.count_values(site)).values())
        except Exception:
            return 0
        finally:
            await storage.close()

    return asyncio.run(go())


def _until(done: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Wait for a condition, not for a time: a busy machine publishes and stores more slowly."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)


def _published(pubs: Publishers, more: int) -> None:
    """Let the nodes publish ``more`` frames from now (20 frames/s per node at SPEED when the machine keeps up)."""
    target = pubs.frames + more
    _until(lambda: pubs.frames >= target, f"{more} more frames published")


def _wait_all_stored(
    influx_url: str, database: str, site: str, sent: dict[str, list[bytes]], timeout_s: float
) -> None:
    expected = sum(len(sample_lines(site, "vib", frames)) for frames in sent.values())
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        stored = _stored_count(influx_url, database, site)
        if stored >= expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{stored} of {expected} values stored after {timeout_s} s")


def _assert_exactly_sent(influx_url: str, database: str, site: str, sent: dict[str, list[bytes]]) -> None:
    stored = _stored_lines(influx_url, database, site)
    assert sorted(stored) == sorted(sent)
    for node, frames in sent.items():
        expected = sample_lines(site, "vib", frames)
        missing = sorted(set(expected) - set(stored[node]))[:3]
        extra = sorted(set(stored[node]) - set(expected))[:3]
        assert checksum(stored[node]) == checksum(expected), (node, missing, extra)


def test_kill_9_mid_stream_then_restart_loses_nothing(
    mosquitto: Mosquitto, influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    """R4: messages are acknowledged only after the spool commit, so SIGKILL at any instant loses nothing."""
    site = "kill9"
    gw = GatewayProcess(tmp_path / "gw", _sections(mosquitto.url, influxdb.url, influx_database, site))
    try:
        gw.start()
        with Publishers(mosquitto.url, node_settings(site, 3), T0_US, SPEED) as pubs:
            _published(pubs, 120)
            before = pubs.frames
            gw.kill()
            _published(pubs, 90)  # nodes keep publishing into the gateway's persistent session
            gw.start()
            _published(pubs, 120)
        assert 0 < before < pubs.frames
        _wait_all_stored(influxdb.url, influx_database, site, pubs.sent, timeout_s=60)
        _assert_exactly_sent(influxdb.url, influx_database, site, pubs.sent)
        assert gw.terminate() == 0
    finally:
        gw.close()


def test_influxdb_stopped_for_60_s_mid_stream_loses_nothing(
    mosquitto: Mosquitto, private_influxdb: InfluxDB, tmp_path: Path
) -> None:
    """R8: while InfluxDB is down the spool holds what arrives; after the restart, stored == sent per series."""
    site = "influxdown"
    gw = GatewayProcess(tmp_path / "gw", _sections(mosquitto.url, private_influxdb.url, "outage", site))
    try:
        gw.start()
        with Publishers(mosquitto.url, node_settings(site, 3), T0_US, SPEED) as pubs:
            _published(pubs, 120)
            private_influxdb.stop()
            time.sleep(60.0)  # R8: the outage lasts 60 s
            spooled = gw.metric("edgegen_spool_frames")
            retries = gw.metric("edgegen_writer_retries_total", reason="unavailable")
            private_influxdb.start()
            _published(pubs, 120)
        assert spooled > 1000  # 60 frames/s kept arriving and waited on disk
        assert retries >= 1
        _wait_all_stored(private_influxdb.url, "outage", site, pubs.sent, timeout_s=120)
        _assert_exactly_sent(private_influxdb.url, "outage", site, pubs.sent)
        assert gw.metric("edgegen_frames_stored_total") == pubs.frames
        assert gw.terminate() == 0
    finally:
        gw.close()


def test_mosquitto_stalled_for_30_s_then_resumed_loses_nothing(
    influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    """R3: SIGSTOP the broker for 30 s while nodes publish QoS 1; after SIGCONT every sequence number arrives
    once."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    site = "stall"
    gw = GatewayProcess(tmp_path / "gw", _sections(broker.url, influxdb.url, influx_database, site))
    try:
        gw.start()
        with Publishers(broker.url, node_settings(site, 3), T0_US, SPEED) as pubs:
            _published(pubs, 120)
            broker.pause()
            time.sleep(30.0)  # R3: the broker stalls for 30 s
            broker.resume()
            _published(pubs, 180)
        _wait_all_stored(influxdb.url, influx_database, site, pubs.sent, timeout_s=120)
        _assert_exactly_sent(influxdb.url, influx_database, site, pubs.sent)
        # Each frame stored once: what the nodes sent again (DUP, after their ack timeout) is a known duplicate.
        stored = gw.metric("edgegen_frames_stored_total")
        assert stored == pubs.frames
        assert gw.metric("edgegen_frames_accepted_total") - gw.metric("edgegen_frames_duplicate_total") == stored
        assert gw.terminate() == 0
    finally:
        gw.close()
        broker.stop()


def test_three_gateways_share_the_load_and_a_killed_one_loses_nothing(
    mosquitto: Mosquitto, influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    """MQTT v5 shared subscription across 3 processes; one is SIGKILLed mid-run and restarted by its supervisor
    (systemd Restart=always): what the broker had given it and it had not acknowledged comes back to it."""
    site = "shared"
    gateways = [
        GatewayProcess(
            tmp_path / name,
            _sections(mosquitto.url, influxdb.url, influx_database, site, shared_group="edgegen")
            | {"mqtt": {"url": mosquitto.url, "client_id": f"gw-{name}", "site": site, "shared_group": "edgegen"}},
        )
        for name in ("a", "b", "c")
    ]
    try:
        for gw in gateways:
            gw.start()
        with Publishers(mosquitto.url, node_settings(site, 6), T0_US, SPEED) as pubs:
            _published(pubs, 360)
            gateways[1].kill()
            _published(pubs, 240)
            gateways[1].start()
            _published(pubs, 360)
        _wait_all_stored(influxdb.url, influx_database, site, pubs.sent, timeout_s=60)
        _assert_exactly_sent(influxdb.url, influx_database, site, pubs.sent)
        accepted = [gw.metric("edgegen_frames_accepted_total") for gw in gateways]
        assert all(n > 0 for n in accepted), accepted  # every member took a share
        for gw in gateways:
            assert gw.terminate() == 0
    finally:
        for gw in gateways:
            gw.close()


def test_sigterm_drains_the_spool_and_what_storage_cannot_take_waits_for_the_next_start(
    mosquitto: Mosquitto, private_influxdb: InfluxDB, tmp_path: Path
) -> None:
    site = "drain"
    sections = _sections(mosquitto.url, private_influxdb.url, "drain", site)
    sections["gateway"]["drain_timeout_s"] = 3.0
    gw = GatewayProcess(tmp_path / "gw", sections)
    try:
        gw.start()
        private_influxdb.stop()
        sent = publish_frames(mosquitto.url, node_settings(site, 2), 40, T0_US)
        deadline = time.monotonic() + 60
        while gw.metric("edgegen_spool_frames") < 80:
            assert time.monotonic() < deadline, gw.log()
            time.sleep(0.2)
        started = time.monotonic()
        assert gw.terminate() == 0
        assert time.monotonic() - started < 30  # drain_timeout_s (3 s) bounds the wait for a storage that is down
        assert "80 frames stay in the spool for the next start" in gw.log()
        private_influxdb.start()
        gw.start()
        more = publish_frames(mosquitto.url, node_settings(site, 2), 20, T0_US + 3_600_000_000)
        while gw.metric("edgegen_frames_acked_total") < 40:  # all in the spool (maybe not yet in storage)
            assert time.monotonic() < deadline + 60, gw.log()
            time.sleep(0.05)
        assert gw.terminate() == 0  # the drain writes what was spooled before exiting
        everything = {node: sent[node] + more[node] for node in sent}
        _assert_exactly_sent(private_influxdb.url, "drain", site, everything)
    finally:
        gw.close()


def test_scores_and_forecasts_reach_influxdb_and_the_fleet_view_lists_the_nodes(
    mosquitto: Mosquitto, influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    site = "scored"
    sections = _sections(mosquitto.url, influxdb.url, influx_database, site)
    sections["analytics"] = {
        "enabled": True,
        "bindings": [{"streams": f"{site}/+/vib", "model": str(SKAB), "period_s": 1.0, "warmup_rows": 20}],
    }
    gw = GatewayProcess(tmp_path / "gw", sections)
    try:
        gw.start()
        nodes = node_settings(site, 2, channels=8, window=50)  # 100 Hz: two frames per model step
        sent = publish_frames(mosquitto.url, nodes, 120, T0_US)  # 60 s of signal per node
        _wait_all_stored(influxdb.url, influx_database, site, sent, timeout_s=60)
        # 59 complete 1 s bins per node (the 60th waits for a later sample), the first 20 calibrate
        expected = dict.fromkeys(sent, 59 - 20)
        deadline = time.monotonic() + 60
        while (scores := _count(influxdb.url, influx_database, "scores", site)) != expected:
            assert time.monotonic() < deadline, (scores, gw.log())
            time.sleep(0.5)
        assert _count(influxdb.url, influx_database, "forecasts", site) == {n: 2 * c for n, c in expected.items()}
        assert gw.metric("edgegen_analytics_rows_total", model="skab") == 2 * 39
        assert gw.metric("edgegen_model_info", model="skab", version=_version(SKAB)) == 1
        listed = {e["node"]: e for e in gw.get_json("/nodes")}
        assert sorted(listed) == ["node-0", "node-1"]
        assert all(e["state"] == "offline" and e["fw"] for e in listed.values())  # the nodes said goodbye
        assert gw.terminate() == 0
        cli = subprocess.run(
            [sys.executable, "-m", "edgegen.cli", "nodes", "--config", str(gw.config), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert sorted(e["node"] for e in json.loads(cli.stdout)) == ["node-0", "node-1"]
    finally:
        gw.close()


SKAB = shipped.generative_models() / "skab"


def _version(model: Path) -> str:
    from edgegen.gateway.analytics.model_loader import load
    from edgegen.models.artifact import load_public

    return load(model, load_public(shipped.dev_public_key())).version


def _count(influx_url: str, database: str, measurement: str, site: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        storage = Influx1Storage(influx_url, database, create_database=False)
        await storage.open()
        try:
            results = await storage.query(
                f"SELECT count(score) FROM {measurement} WHERE site = '{site}' GROUP BY node"
                if measurement == "scores"
                else f"SELECT count(c0_mean) FROM {measurement} WHERE site = '{site}' GROUP BY node"
            )
        finally:
            await storage.close()
        return {s["tags"]["node"]: s["values"][0][1] for s in results[0].get("series", [])}

    return asyncio.run(go())


def test_the_broker_refusing_the_password_stops_the_daemon_with_the_reason_and_no_secret(
    influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", passwords={"gw": "right-pw"})
    broker.start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("wrong-pw-7f3a\n")
    sections = _sections(broker.url, influxdb.url, influx_database, "auth")
    sections["mqtt"] |= {"username": "gw", "password_file": str(secret)}
    gw = GatewayProcess(tmp_path / "gw", sections)
    try:
        with pytest.raises(RuntimeError, match="gateway exited with 1"):
            gw.start(ready_timeout_s=20)
        log = gw.log()
        assert "error: MQTT mqtt://" in log and "Not authorized" in log
        assert "wrong-pw-7f3a" not in log
    finally:
        gw.close()
        broker.stop()
