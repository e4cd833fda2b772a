"""The fleet view: NodeRegistry from statuses and last wills, ``edgegen nodes``, and R5 through mosquitto."""

from __future__ import annotations

import importlib
import json
import queue
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import typer
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from edgegen.cli.nodes import register
from edgegen.firmware_py import VERSION as FW_VERSION
from edgegen.gateway.fleet import (
    MAX_STATUS_BYTES,
    OVERFLOW,
    REGISTRY_FILE,
    BadStatus,
    NodeEntry,
    NodeRegistry,
    NodeTraffic,
    RegistryUnavailable,
    read_entries,
)
from edgegen.gateway.protocol.topics import data_topic, gateway_status_topic, status_topic
from tests.support.servers import Mosquitto

# firmware_py has typed stubs in typings/ for the modules the gateway imports; status.py is not among them.
firmware_status: Any = importlib.import_module("edgegen.firmware_py.status")

T0 = 1_750_000_000_000_000  # µs
S = 1_000_000  # one second in µs
TOPIC = str(status_topic("plant-a", "node-1"))


def running(**overrides: Any) -> bytes:
    """A status exactly as the firmware makes it (edgegen/firmware_py/status.py), outbox counters included."""
    outbox = SimpleNamespace(depth=lambda: 3, dropped=7, corrupt=0)
    uplink = SimpleNamespace(outbox=outbox, connects=2, last_error=None)
    return bytes(
        firmware_status.status_payload(
            "online", 1234, models={"anomaly": "2"}, uplink=uplink, last_error=None, **overrides
        )
    )


def offline() -> bytes:
    return bytes(firmware_status.offline_payload())


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[NodeRegistry]:
    reg = NodeRegistry(tmp_path / REGISTRY_FILE, offline_after_s=30)
    yield reg
    reg.close()


def only(reg: NodeRegistry, now_us: int) -> NodeEntry:
    entries = reg.entries(now_us)
    assert len(entries) == 1
    return entries[0]


def test_running_status_is_stored_field_by_field(registry: NodeRegistry) -> None:
    entry = registry.update_status(TOPIC, running(streams_down=["vib"]), T0)  # unknown fields are ignored

    assert entry == only(registry, T0)
    assert (entry.site, entry.node, entry.state, entry.online) == ("plant-a", "node-1", "online", True)
    assert entry.fw == FW_VERSION
    assert dict(entry.models) == {"anomaly": "2"}
    assert (entry.uptime_s, entry.mem_free, entry.last_error) == (1234, None, None)  # CPython has no mem_free
    assert (entry.outbox_depth, entry.dropped, entry.connects) == (3, 7, 2)
    assert (entry.first_seen_us, entry.last_seen_us, entry.last_status_us) == (T0, T0, T0)
    assert registry.counts.statuses == 1


def test_last_will_turns_a_running_node_offline(registry: NodeRegistry) -> None:
    registry.update_status(TOPIC, running(), T0)
    entry = registry.update_status(TOPIC, offline(), T0 + 10 * S)

    assert entry is not None
    assert (entry.state, entry.online) == ("offline", False)
    assert entry.last_status_us == T0 + 10 * S
    assert entry.last_seen_us == T0  # the broker published the will; the node itself was last heard at T0
    # The will carries only state and fw: the last reported models and counters stay visible.
    assert dict(entry.models) == {"anomaly": "2"}
    assert (entry.uptime_s, entry.outbox_depth, entry.dropped, entry.connects) == (1234, 3, 7, 2)
    assert only(registry, T0 + 11 * S).online is False

    back = registry.update_status(TOPIC, running(), T0 + 20 * S)  # reconnected: its status replaces the will
    assert back is not None
    assert (back.state, back.online, back.last_seen_us, back.first_seen_us) == ("online", True, T0 + 20 * S, T0)


def test_running_node_goes_offline_after_offline_after_s_without_traffic(registry: NodeRegistry) -> None:
    registry.update_status(TOPIC, running(), T0)

    assert only(registry, T0 + 30 * S).online is True  # exactly offline_after_s: still online
    stale = only(registry, T0 + 30 * S + 1)
    assert (stale.state, stale.online, stale.last_seen_ago_s) == ("online", False, 30.000001)


def test_data_frames_keep_a_node_online(registry: NodeRegistry) -> None:
    registry.update_status(TOPIC, running(), T0)
    registry.frame_stored("plant-a", "node-1", 8, T0 + 25 * S)
    registry.frame_stored("plant-a", "node-1", 8, T0 + 50 * S)

    entry = only(registry, T0 + 75 * S)
    assert (entry.online, entry.last_seen_us, entry.last_status_us) == (True, T0 + 50 * S, T0)
    assert only(registry, T0 + 80 * S + 1).online is False


def test_data_after_the_last_will_does_not_make_a_node_online(registry: NodeRegistry) -> None:
    registry.update_status(TOPIC, running(), T0)
    registry.update_status(TOPIC, offline(), T0 + S)
    registry.frame_stored("plant-a", "node-1", 8, T0 + 2 * S)  # late: only a new status says the node is back

    entry = only(registry, T0 + 2 * S)
    assert (entry.state, entry.online, entry.last_seen_us) == ("offline", False, T0 + 2 * S)


def test_stored_frames_write_last_seen_and_counters_at_most_once_per_second_per_node(tmp_path: Path) -> None:
    path = tmp_path / REGISTRY_FILE
    reg = NodeRegistry(path, offline_after_s=30)

    def on_disk() -> list[tuple[str, str, int, int | None]]:
        return [(e.node, e.state, e.last_seen_us, e.frames_stored) for e in read_entries(path, T0 + 10 * S)]

    reg.frame_stored("plant-a", "node-1", 8, T0)  # a node's first frame creates its entry at once, state unknown
    reg.frame_stored("plant-a", "node-1", 8, T0 + S // 2)
    reg.frame_stored("plant-a", "node-1", 8, T0 + S - 1)
    reg.frame_stored("plant-a", "node-2", 8, T0 + S // 2)
    assert on_disk() == [("node-1", "unknown", T0, 1), ("node-2", "unknown", T0 + S // 2, 1)]
    assert [(e.node, e.last_seen_us, e.frames_stored) for e in reg.entries(T0 + S)] == [
        ("node-1", T0 + S - 1, 3),  # the gateway's own view includes what is not written yet
        ("node-2", T0 + S // 2, 1),
    ]

    reg.frame_stored("plant-a", "node-1", 8, T0 + S)  # one second after the last write
    reg.frame_stored("plant-a", "node-1", 8, T0 + S + 1)
    assert on_disk()[0] == ("node-1", "unknown", T0 + S, 4)

    reg.flush()  # the gateway calls it every second: what was kept in memory is written
    assert on_disk() == [("node-1", "unknown", T0 + S + 1, 5), ("node-2", "unknown", T0 + S // 2, 1)]
    reg.frame_stored("plant-a", "node-2", 8, T0 + S + 2)
    reg.close()  # so does close
    assert on_disk()[1] == ("node-2", "unknown", T0 + S + 2, 2)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"running", "status is not JSON"),
        (b'{"state": "online"', "status is not JSON"),
        (b"\xff\xfe{}", "status is not JSON"),
        (b'["online"]', "status must be a JSON object, not list"),
        (b'"online"', "status must be a JSON object, not str"),
        (b'{"fw": "0.1.0"}', '"state" must be a string of 1 to 64 characters, not None'),
        (b'{"state": 5}', '"state" must be a string of 1 to 64 characters, not 5'),
        (b'{"state": ""}', '"state" must be a string of 1 to 64 characters'),
        (b'{"state": "online", "models": ["anomaly"]}', '"models" must be an object of slot -> version'),
        (b'{"state": "online", "models": {"anomaly": 2.5}}', "version of slot 'anomaly' must be a string or int"),
        (b'{"state": "online", "models": {"_x": "1"}}', "slot '_x' must match"),
        (b'{"state": "online", "fw": 1}', '"fw" must be a string or null, not 1'),
        (
            b'{"state": "online", "uptime_s": "12"}',
            "\"uptime_s\" must be a non-negative integer or null, not '12'",
        ),
        (b'{"state": "online", "uptime_s": -1}', '"uptime_s" must be a non-negative integer or null, not -1'),
        (b'{"state": "online", "dropped": true}', '"dropped" must be a non-negative integer or null, not True'),
        (b'{"state": "online", "outbox_depth": 1.0}', '"outbox_depth" must be a non-negative integer'),
        (b'{"state": "online", "connects": 9223372036854775808}', '"connects" must be a non-negative integer'),
        (b'{"state": "online", "last_error": {"code": 1}}', '"last_error" must be a string or null'),
        (b"[" * 10_000, "status is not JSON"),  # nesting too deep for the parser: still a BadStatus
        (b" " * (MAX_STATUS_BYTES + 1), f"status is {MAX_STATUS_BYTES + 1} bytes, more than {MAX_STATUS_BYTES}"),
    ],
)
def test_malformed_status_raises_bad_status_and_keeps_the_entry(
    registry: NodeRegistry, payload: bytes, message: str
) -> None:
    registry.update_status(TOPIC, running(), T0)
    before = registry.entries(T0 + S)

    with pytest.raises(BadStatus) as caught:
        registry.update_status(TOPIC, payload, T0 + S)

    assert str(caught.value).startswith(f"{TOPIC}: ")
    assert message in str(caught.value)
    assert caught.value.retryable is False
    assert registry.entries(T0 + S) == before
    assert (registry.counts.statuses, registry.counts.rejected) == (1, 1)


def test_malformed_first_status_creates_no_entry(registry: NodeRegistry) -> None:
    with pytest.raises(BadStatus):
        registry.update_status(TOPIC, b'{"state": 5}', T0)
    assert registry.entries(T0) == []


def test_empty_payload_clears_the_retained_status_but_not_the_entry(registry: NodeRegistry) -> None:
    registry.update_status(TOPIC, running(), T0)
    before = registry.entries(T0 + S)

    assert registry.update_status(TOPIC, b"", T0 + S) is None

    assert registry.entries(T0 + S) == before
    assert (registry.counts.statuses, registry.counts.cleared, registry.counts.rejected) == (1, 1, 0)


def test_the_gateway_own_status_and_other_topics_are_ignored(registry: NodeRegistry) -> None:
    gateway_topic = gateway_status_topic("plant-a", "gw-1")
    assert gateway_topic == "edgegen/v1/plant-a/_gateway/gw-1/status"

    assert registry.update_status(gateway_topic, b'{"state": "online"}', T0) is None
    assert registry.update_status(str(data_topic("plant-a", "node-1", "vib")), running(), T0) is None
    assert registry.update_status("other/tree/status", running(), T0) is None

    assert registry.entries(T0) == []
    assert (registry.counts.ignored, registry.counts.statuses, registry.counts.rejected) == (3, 0, 0)


def test_the_registry_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / REGISTRY_FILE
    reg = NodeRegistry(path, offline_after_s=30)
    reg.update_status(TOPIC, running(), T0)
    reg.update_status(str(status_topic("plant-b", "node-9")), offline(), T0 + S)
    reg.frame_stored("plant-a", "node-1", 8, T0 + 2 * S)  # first frame after the status: written at once
    reg.frame_stored("plant-a", "node-1", 8, T0 + 2 * S + 5)  # kept in memory until close
    before = reg.entries(T0 + 3 * S)
    reg.close()

    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(REGISTRY_FILE))[0] == REGISTRY_FILE
    assert [(e.node, e.frames_stored) for e in read_entries(path, T0 + 3 * S)] == [("node-1", 2), ("node-9", None)]
    again = NodeRegistry(path, offline_after_s=30)
    try:
        # the traffic counters are the gateway run's: a new run starts them afresh; everything else survives
        assert again.entries(T0 + 3 * S) == [
            replace(e, frames_stored=None, values_stored=None, frames_rejected=None) for e in before
        ]
        assert [(e.site, e.node, e.state, e.online, e.last_seen_us, e.frames_stored) for e in before] == [
            ("plant-a", "node-1", "online", True, T0 + 2 * S + 5, 2),
            ("plant-b", "node-9", "offline", False, T0 + S, None),
        ]
        entry = again.update_status(TOPIC, running(), T0 + 4 * S)
        assert entry is not None
        assert entry.first_seen_us == T0  # first seen survives the restart
    finally:
        again.close()


def test_traffic_counters_per_node_in_traffic_entries_and_json(registry: NodeRegistry) -> None:
    registry.update_status(TOPIC, running(), T0)
    for i in range(3):
        registry.frame_stored("plant-a", "node-1", 24, T0 + i)
    registry.frame_stored("plant-a", "node-1", 23, T0 + 3)  # one NaN: stored values are the finite ones
    registry.frame_rejected("plant-a", "node-1", T0 + 4)
    registry.frame_stored("plant-b", "node-2", 8, T0 + 5)

    assert registry.traffic() == {
        ("plant-a", "node-1"): NodeTraffic(frames_stored=4, values_stored=95, frames_rejected=1),
        ("plant-b", "node-2"): NodeTraffic(frames_stored=1, values_stored=8, frames_rejected=0),
    }
    listed = [entry.to_json() for entry in registry.entries(T0 + 6)]
    assert [(n["node"], n["frames_stored"], n["values_stored"], n["frames_rejected"]) for n in listed] == [
        ("node-1", 4, 95, 1),
        ("node-2", 1, 8, 0),
    ]
    registry.traffic()[("plant-a", "node-1")].frames_stored = 99  # a copy: the registry's counters stay
    assert registry.traffic()[("plant-a", "node-1")].frames_stored == 4


def test_a_status_only_node_has_null_counters(registry: NodeRegistry) -> None:
    entry = registry.update_status(TOPIC, running(), T0)

    assert entry is not None
    assert (entry.frames_stored, entry.values_stored, entry.frames_rejected) == (None, None, None)
    assert registry.traffic() == {}


def test_rejected_frames_make_no_entry_and_are_written_with_the_first_row(tmp_path: Path) -> None:
    path = tmp_path / REGISTRY_FILE
    reg = NodeRegistry(path, offline_after_s=30)
    try:
        reg.frame_rejected("plant-a", "node-1", T0)
        reg.frame_rejected("plant-a", "node-1", T0 + 2 * S)  # due for a write, but there is no row to write to
        reg.flush()
        assert reg.entries(T0 + 2 * S) == []  # a rejected frame is no sign of life
        assert reg.traffic() == {("plant-a", "node-1"): NodeTraffic(frames_rejected=2)}

        reg.update_status(TOPIC, running(), T0 + 3 * S)  # the row, written through: with the counters so far
        assert [(e.frames_stored, e.frames_rejected) for e in read_entries(path, T0 + 3 * S)] == [(0, 2)]
        reg.frame_rejected("plant-a", "node-1", T0 + 4 * S)
        assert [(e.frames_stored, e.frames_rejected) for e in read_entries(path, T0 + 4 * S)] == [(0, 3)]
    finally:
        reg.close()


def test_counters_beyond_max_counted_nodes_go_to_one_overflow_tally(tmp_path: Path) -> None:
    path = tmp_path / REGISTRY_FILE
    reg = NodeRegistry(path, offline_after_s=30, max_counted_nodes=2)
    for node in ("node-1", "node-2", "node-3", "node-4"):
        reg.frame_stored("plant-a", node, 10, T0)
        reg.frame_rejected("plant-a", node, T0)
    reg.frame_rejected("plant-a", "node-5", T0)
    reg.frame_stored("plant-a", "node-1", 10, T0 + 1)  # counted nodes keep counting

    assert reg.traffic() == {
        ("plant-a", "node-1"): NodeTraffic(2, 20, 1),
        ("plant-a", "node-2"): NodeTraffic(1, 10, 1),
        OVERFLOW: NodeTraffic(2, 20, 3),  # node-3, node-4 and node-5 together
    }
    reg.close()
    # the nodes beyond the bound are still in the fleet view (node-5 sent nothing storable: no row), uncounted
    assert [(e.node, e.frames_stored, e.frames_rejected) for e in read_entries(path, T0)] == [
        ("node-1", 2, 1),
        ("node-2", 1, 1),
        ("node-3", None, None),
        ("node-4", None, None),
    ]
    assert reg.traffic()[OVERFLOW] == NodeTraffic(2, 20, 3)  # still readable after close, for a summary


def test_a_registry_written_before_the_traffic_counters_is_read_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / REGISTRY_FILE
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE nodes (site TEXT NOT NULL, node TEXT NOT NULL, state TEXT NOT NULL, fw TEXT,"
            " models TEXT NOT NULL, uptime_s INTEGER, mem_free INTEGER, last_error TEXT, outbox_depth INTEGER,"
            " dropped INTEGER, connects INTEGER, first_seen_us INTEGER NOT NULL, last_seen_us INTEGER NOT NULL,"
            " last_status_us INTEGER, online INTEGER NOT NULL, PRIMARY KEY (site, node)) WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO nodes (site, node, state, models, first_seen_us, last_seen_us, online)"
            " VALUES ('plant-a', 'node-1', 'online', '{}', ?, ?, 1)",
            (T0, T0),
        )
    conn.close()

    assert [(e.node, e.frames_stored) for e in read_entries(path, T0)] == [("node-1", None)]
    reg = NodeRegistry(path, offline_after_s=30)
    reg.frame_stored("plant-a", "node-1", 8, T0 + S)
    reg.close()
    assert [(e.node, e.state, e.first_seen_us, e.frames_stored) for e in read_entries(path, T0)] == [
        ("node-1", "online", T0, 1)
    ]


def test_read_entries_of_a_missing_or_foreign_file_raise_registry_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable, match="no node registry at"):
        read_entries(tmp_path / REGISTRY_FILE, T0)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(RegistryUnavailable, match="is not a readable node registry"):
        read_entries(tmp_path / "junk.sqlite", T0)


# -- edgegen nodes ------------------------------------------------------------------------------------------


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    """Three nodes judged at the real clock: one running (its frames counted), one whose last will arrived, one
    silent for 200 s."""
    state = tmp_path / "state"
    now = time.time_ns() // 1000
    reg = NodeRegistry(state / REGISTRY_FILE)
    reg.update_status(TOPIC, running(), now)
    for _ in range(1234):
        reg.frame_stored("plant-a", "node-1", 24, now)
    reg.frame_rejected("plant-a", "node-1", now)
    reg.update_status(str(status_topic("plant-a", "node-2")), running(), now - 5 * S)
    reg.update_status(str(status_topic("plant-a", "node-2")), offline(), now)
    reg.update_status(str(status_topic("plant-b", "node-3")), running(), now - 200 * S)
    reg.close()
    return state


def nodes_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A root, so that ``nodes`` stays a subcommand."""

    register(app)
    return app


def invoke(*args: str) -> Any:
    return CliRunner(env={"EDGEGEN_CONFIG": None}).invoke(nodes_app(), ["nodes", *args])


def test_nodes_json_lists_exactly_the_registered_nodes(fleet_dir: Path) -> None:
    result = invoke("--state-dir", str(fleet_dir), "--json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(n["site"], n["node"], n["state"], n["online"]) for n in listed] == [
        ("plant-a", "node-1", "online", True),
        ("plant-a", "node-2", "offline", False),
        ("plant-b", "node-3", "online", False),  # said online, silent for 200 s > 90 s
    ]
    assert listed[0]["models"] == {"anomaly": "2"}
    assert (listed[0]["fw"], listed[0]["uptime_s"], listed[0]["outbox_depth"], listed[0]["dropped"]) == (
        FW_VERSION,
        1234,
        3,
        7,
    )
    assert {n["offline_after_s"] for n in listed} == {90.0}
    assert [(n["frames_stored"], n["values_stored"], n["frames_rejected"]) for n in listed] == [
        (1234, 1234 * 24, 1),
        (None, None, None),  # nothing counted since the gateway started
        (None, None, None),
    ]


def test_nodes_site_filter_and_offline_after(fleet_dir: Path) -> None:
    result = invoke("--state-dir", str(fleet_dir), "--json", "--site", "plant-b", "--offline-after", "300")

    assert result.exit_code == 0, result.output
    assert [(n["node"], n["online"]) for n in json.loads(result.stdout)] == [("node-3", True)]


def test_nodes_reads_the_state_dir_from_the_config_file(fleet_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "edgegen.toml"
    config.write_text(f'[gateway]\nstate_dir = "{fleet_dir}"\n')

    result = invoke("--config", str(config), "--json")

    assert result.exit_code == 0, result.output
    assert [n["node"] for n in json.loads(result.stdout)] == ["node-1", "node-2", "node-3"]


def test_nodes_table_shows_every_node(fleet_dir: Path) -> None:
    result = invoke("--state-dir", str(fleet_dir))

    assert result.exit_code == 0, result.output
    for text in (
        "node-1",
        "node-2",
        "node-3",
        "plant-a",
        "plant-b",
        "anomaly=2",
        "20 min 34 s",
        "3 nodes, 1 online",
    ):
        assert text in result.stdout
    assert re.search(r"\b3 min 2\d s ago", result.stdout)  # node-3, judged a moment after the fixture ran
    assert re.search(r"\b[5-9] s ago", result.stdout)  # node-2: heard 5 s before its will
    assert result.stdout.count("offline") == 3  # node-2: state and verdict; node-3: verdict
    rows = [[cell.strip() for cell in line.split("│")] for line in result.stdout.splitlines() if "│" in line]
    assert {row[2]: row[9:13] for row in rows} == {  # node -> outbox, dropped, stored, rejected
        "node-1": ["3", "7", "1234", "1"],
        "node-2": ["3", "7", "-", "-"],
        "node-3": ["3", "7", "-", "-"],
    }


def test_nodes_without_a_registry_says_so_and_exits_1(tmp_path: Path) -> None:
    result = invoke("--state-dir", str(tmp_path / "empty"))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: no node registry at {tmp_path / 'empty' / REGISTRY_FILE}" in result.stderr


# -- R5 through a real broker -------------------------------------------------------------------------------

KEEPALIVE_S = 2
# How late the will may come after the cut, beyond 1.5 x keepalive. A closed socket: the broker sees it at once.
# A silent one: mosquitto 2.0.11 (Debian's) keeps time in whole seconds and checks keepalives every 5 s, so it
# disconnects between 1.5 x keepalive and 1.5 x keepalive + 6 s (measured at keepalive 2: 3.1 to 9.0 s).
MARGIN_S = {"socket_closed": 1.0, "silent": 7.0}
BUSY_S = 3.0  # a busy machine delays the broker's timer, its will and our subscriber, on top of either margin


def _wait(done: Any, what: str, step: Any = lambda: time.sleep(0.01), timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        step()


@pytest.mark.slow
@pytest.mark.mosquitto
@pytest.mark.parametrize("fault", ["socket_closed", "silent"])
def test_r5_cut_node_shows_offline_within_one_and_a_half_keepalives(
    mosquitto: Mosquitto, tmp_path: Path, fault: str
) -> None:
    """A node with a last will publishes its retained status; its connection is cut without DISCONNECT
    (``socket_closed``: the broker sees the socket close; ``silent``: the node stops talking and the broker's
    keepalive timer fires). A gateway-side subscriber feeding the registry must see the node offline in time."""
    site = f"fleet-r5-{fault.replace('_', '-')}"
    topic = str(status_topic(site, "node-1"))
    reg = NodeRegistry(tmp_path / REGISTRY_FILE, offline_after_s=60)
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()  # paho's thread -> this one, which owns the registry

    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{site}-node", reconnect_on_failure=False)
    node.will_set(topic, offline(), qos=1, retain=True)
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{site}-gateway")
    watcher.on_message = lambda _c, _u, msg: inbox.put((msg.topic, bytes(msg.payload)))
    try:
        node.connect("127.0.0.1", mosquitto.port, keepalive=KEEPALIVE_S)
        _wait(node.is_connected, "no CONNACK for the node", step=lambda: node.loop(timeout=0.05))
        published = node.publish(topic, running(), qos=1, retain=True)
        _wait(published.is_published, "no PUBACK for the status", step=lambda: node.loop(timeout=0.05))

        watcher.loop_start()  # before connect: paho's loop_start replaces (and leaks) connect's wake-up sockets
        watcher.connect("127.0.0.1", mosquitto.port, keepalive=30)
        _wait(watcher.is_connected, "no CONNACK for the watcher")
        watcher.subscribe(f"edgegen/v1/{site}/#", qos=1)

        def feed_until(state: str, timeout_s: float) -> NodeEntry:
            deadline = time.monotonic() + timeout_s
            while True:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"node-1 did not become {state} within {timeout_s} s"
                try:
                    message_topic, payload = inbox.get(timeout=remaining)
                except queue.Empty:
                    continue
                entry = reg.update_status(message_topic, payload, time.time_ns() // 1000)
                if entry is not None and entry.state == state:
                    return entry

        up = feed_until("online", 30)
        assert (up.online, up.fw, up.outbox_depth) == (True, FW_VERSION, 3)

        cut = time.monotonic()
        sock = node.socket()
        assert isinstance(sock, socket.socket)
        if fault == "socket_closed":
            sock.shutdown(socket.SHUT_RDWR)  # FIN without DISCONNECT: the broker must publish the will
        # "silent": nobody calls node.loop() any more, so no PINGREQ goes out; the socket stays open.
        down = feed_until("offline", 1.5 * KEEPALIVE_S + MARGIN_S[fault] + BUSY_S)
        elapsed = time.monotonic() - cut

        assert elapsed <= 1.5 * KEEPALIVE_S + MARGIN_S[fault] + BUSY_S
        assert (down.state, down.online, down.fw) == ("offline", False, FW_VERSION)
        assert [(e.site, e.node, e.online) for e in reg.entries(time.time_ns() // 1000)] == [
            (site, "node-1", False)
        ]
        assert reg.counts.statuses == 2
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        watcher._reset_sockets()
        node._reset_sockets()  # closes the sockets without sending DISCONNECT (which would drop the will)
        reg.close()
