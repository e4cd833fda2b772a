"""The fleet view: one row per node, built from retained status messages, last wills and data traffic.

A node publishes a retained JSON status on ``edgegen/v1/{site}/{node}/status`` (firmware_py/status.py) and leaves a
retained last will ``{"state": "offline", "fw": ...}`` there, which the broker publishes when the node's connection
breaks. The registry keeps the latest of each in SQLite (``<state_dir>/nodes.sqlite``, WAL, synchronous=NORMAL) so
``edgegen nodes`` can read it while the gateway runs, and so the view survives a gateway restart.

A node is *online* iff its last status is not ``offline`` and it was heard (a stored data frame, or a status other
than ``offline``) within ``offline_after_s``: the last will covers a cut connection, the timeout covers a broker
that lost the will or a node that is connected but stuck.

Traffic counters. Per node the registry also counts the frames it stored, their values, and the frames that went
to the dead-letter store instead (:class:`NodeTraffic`), since the registry was opened, i.e. since the gateway
started, like the gateway's Prometheus counters. Opening a registry file therefore clears the counters it holds
(null: none counted in this run). In memory they are bounded: beyond ``max_counted_nodes`` nodes, a further node's
traffic is added to one tally under :data:`OVERFLOW` (in :meth:`NodeRegistry.traffic` only) and its own counters
stay null. A node gets a row with its first status or its first stored frame; frames rejected before that are
written then.

Write policy. ``update_status`` writes through at once: statuses are rare (one per node per status interval) and
are the facts the view is built from. ``frame_stored`` and ``frame_rejected`` run for every frame, so they only
update dicts; they write a node's ``last_seen_us`` and counters to the file at most once per second per node (the
first frame of a node, then the first frame after each further second), and :meth:`NodeRegistry.flush` (the
gateway calls it every second) writes what is left. The file therefore lags the gateway's own view by about one
second, and a crash loses at most that much; :meth:`NodeRegistry.entries` includes the unwritten values and
:meth:`NodeRegistry.close` writes them. The registry is not thread-safe: the gateway uses it from its event loop
only.
"""

from __future__ import annotations

import json
import sqlite3
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgegen.gateway.errors import GatewayError
from edgegen.gateway.protocol.errors import BadTopic
from edgegen.gateway.protocol.topics import IDENTIFIER_PATTERN, Channel, parse_topic

REGISTRY_FILE = "nodes.sqlite"
OFFLINE = "offline"
UNKNOWN = "unknown"  # a node that sent data before any status of it was seen
DEFAULT_OFFLINE_AFTER_S = 90.0  # three missed status intervals of the default node configuration
WRITE_INTERVAL_US = 1_000_000  # how often a busy node's last-seen time and counters are written, not per frame
MAX_COUNTED_NODES = 10_000  # traffic counters are kept in memory: a flood of made-up node ids must not grow them
OVERFLOW = ("*", "*")  # the key of the traffic of nodes beyond MAX_COUNTED_NODES: "*" is no valid identifier
MAX_STATUS_BYTES = 16_384  # a status is a few hundred bytes; far beyond this it is not a status
MAX_TEXT_CHARS = 1_024  # state and fw are short tokens; last_error is cut to this length
_INT64_MAX = 2**63 - 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,            -- the node's last word: "online", "offline", ...; "unknown" before any status
    fw TEXT,
    models TEXT NOT NULL,           -- JSON object: slot -> version
    uptime_s INTEGER,
    mem_free INTEGER,
    last_error TEXT,
    outbox_depth INTEGER,
    dropped INTEGER,
    connects INTEGER,
    frames_stored INTEGER,          -- traffic since the gateway started; null: none counted (see the docstring)
    values_stored INTEGER,
    frames_rejected INTEGER,
    first_seen_us INTEGER NOT NULL,
    last_seen_us INTEGER NOT NULL,  -- the node itself was last heard: a data frame or a status other than offline
    last_status_us INTEGER,         -- the last status message of any state, the last will included
    online INTEGER NOT NULL,        -- state != "offline" as of the last write; readers judge staleness themselves
    PRIMARY KEY (site, node)
) WITHOUT ROWID;
"""

_TRAFFIC_COLUMNS = ("frames_stored", "values_stored", "frames_rejected")
_COLUMN_NAMES = (
    *("site", "node", "state", "fw", "models", "uptime_s", "mem_free", "last_error"),
    *("outbox_depth", "dropped", "connects", *_TRAFFIC_COLUMNS, "first_seen_us", "last_seen_us", "last_status_us"),
)
_COLUMNS = ", ".join(_COLUMN_NAMES)
# Optional status fields stored as non-negative integers (null = unknown); absent fields keep their last value.
_INT_FIELDS = ("uptime_s", "mem_free", "outbox_depth", "dropped", "connects")


class BadStatus(GatewayError):
    """A status payload that is not the JSON object of docs/protocol.md; the registry keeps the old entry."""

    retryable = False


class RegistryUnavailable(GatewayError):
    """The registry file is missing or is not a node registry (``edgegen nodes`` reports it and exits 1)."""

    retryable = False


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One node as the registry knows it, judged online or not at ``as_of_us`` (see the module docstring)."""

    site: str
    node: str
    state: str
    fw: str | None
    models: Mapping[str, str | int]
    uptime_s: int | None
    mem_free: int | None
    last_error: str | None
    outbox_depth: int | None
    dropped: int | None
    connects: int | None
    frames_stored: int | None  # the traffic counters: since the gateway started, null if none counted
    values_stored: int | None
    frames_rejected: int | None
    first_seen_us: int
    last_seen_us: int
    last_status_us: int | None
    as_of_us: int  # the clock reading ``online`` was judged at
    offline_after_s: float
    online: bool = field(init=False)

    def __post_init__(self) -> None:
        fresh = self.as_of_us - self.last_seen_us <= self.offline_after_s * 1_000_000
        object.__setattr__(self, "online", self.state != OFFLINE and fresh)

    @property
    def last_seen_ago_s(self) -> float:
        """Seconds since the node was last heard, at ``as_of_us`` (never negative, whatever the clocks did)."""
        return max(0, self.as_of_us - self.last_seen_us) / 1_000_000

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, ``online`` and ``last_seen_ago_s`` included."""
        return {
            "site": self.site,
            "node": self.node,
            "state": self.state,
            "online": self.online,
            "last_seen_ago_s": self.last_seen_ago_s,
            "fw": self.fw,
            "models": dict(self.models),
            "uptime_s": self.uptime_s,
            "mem_free": self.mem_free,
            "last_error": self.last_error,
            "outbox_depth": self.outbox_depth,
            "dropped": self.dropped,
            "connects": self.connects,
            "frames_stored": self.frames_stored,
            "values_stored": self.values_stored,
            "frames_rejected": self.frames_rejected,
            "first_seen_us": self.first_seen_us,
            "last_seen_us": self.last_seen_us,
            "last_status_us": self.last_status_us,
            "as_of_us": self.as_of_us,
            "offline_after_s": self.offline_after_s,
        }


@dataclass
class NodeTraffic:
    """One node's frames since the registry was opened (the gateway started)."""

    frames_stored: int = 0
    values_stored: int = 0  # the stored frames' finite values: what storage holds of them
    frames_rejected: int = 0  # frames that went to the dead-letter store instead of storage, whatever the cause


@dataclass
class FleetCounts:
    """What the registry did with the status messages it was given (for metrics and tests)."""

    statuses: int = 0  # stored
    rejected: int = 0  # BadStatus raised; the entry was kept
    cleared: int = 0  # empty payloads (the retained status was deleted); the entry was kept
    ignored: int = 0  # topics that are not a node's status topic, e.g. the gateway's own status


@dataclass(frozen=True, slots=True)
class _Status:
    """A validated status payload. ``fields`` holds only the optional fields the payload carried."""

    state: str
    fields: dict[str, Any]


def parse_status(payload: bytes) -> _Status:
    """Validate a non-empty status payload; raise :class:`BadStatus` naming the first problem.

    Unknown fields are ignored (docs/protocol.md: later versions add fields). Known optional fields may be absent
    (the entry keeps their last value, so a last will leaves the last reported models and counters visible) or
    null (unknown).
    """
    if len(payload) > MAX_STATUS_BYTES:
        raise BadStatus(f"status is {len(payload)} bytes, more than {MAX_STATUS_BYTES}")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadStatus(f"status is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadStatus(f"status must be a JSON object, not {type(doc).__name__}")
    state = doc.get("state")
    if not isinstance(state, str) or not 0 < len(state) <= 64:
        raise BadStatus(f'"state" must be a string of 1 to 64 characters, not {state!r}')
    fields: dict[str, Any] = {}
    if "fw" in doc:
        fields["fw"] = _text(doc, "fw", 64)
    if "last_error" in doc:
        fields["last_error"] = _text(doc, "last_error", None)
    for name in _INT_FIELDS:
        if name in doc:
            fields[name] = _count(doc, name)
    if "models" in doc:
        fields["models"] = _models(doc["models"])
    return _Status(state, fields)


def _text(doc: dict[str, Any], name: str, max_chars: int | None) -> str | None:
    value = doc[name]
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadStatus(f'"{name}" must be a string or null, not {value!r}')
    if max_chars is not None and len(value) > max_chars:
        raise BadStatus(f'"{name}" is {len(value)} characters, more than {max_chars}')
    return value[:MAX_TEXT_CHARS]


def _count(doc: dict[str, Any], name: str) -> int | None:
    value = doc[name]
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= _INT64_MAX:  # bool is an int subclass: not a count
        raise BadStatus(f'"{name}" must be a non-negative integer or null, not {value!r}')
    return value


def _models(value: object) -> dict[str, str | int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadStatus(f'"models" must be an object of slot -> version, not {value!r}')
    models: dict[str, str | int] = {}
    for slot, version in value.items():
        if not IDENTIFIER_PATTERN.fullmatch(slot):
            raise BadStatus(f'"models" slot {slot!r} must match {IDENTIFIER_PATTERN.pattern}')
        if not (isinstance(version, str) and len(version) <= 64) and type(version) is not int:
            raise BadStatus(f'"models" version of slot {slot!r} must be a string or integer, not {version!r}')
        models[slot] = version
    return models


class NodeRegistry:
    """The gateway's device registry: writes ``path`` (SQLite, WAL), answers :meth:`entries`, :meth:`traffic`."""

    def __init__(
        self,
        path: Path,
        offline_after_s: float = DEFAULT_OFFLINE_AFTER_S,
        max_counted_nodes: int = MAX_COUNTED_NODES,
    ) -> None:
        if offline_after_s <= 0:
            raise ValueError(f"offline_after_s must be positive, not {offline_after_s}")
        self.path = path
        self.offline_after_s = offline_after_s
        self.max_counted_nodes = max_counted_nodes
        self.counts = FleetCounts()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        with self._conn:
            present = _present_columns(self._conn)
            for column in _TRAFFIC_COLUMNS:  # a registry written before the counters existed
                if column not in present:
                    self._conn.execute(f"ALTER TABLE nodes ADD COLUMN {column} INTEGER")
            self._conn.execute(f"UPDATE nodes SET {', '.join(f'{c} = NULL' for c in _TRAFFIC_COLUMNS)}")
        self._traffic: dict[tuple[str, str], NodeTraffic] = {}
        self._seen: dict[tuple[str, str], int] = {}  # last stored frame per node, possibly not yet written
        self._unwritten: dict[tuple[str, str], int] = {}  # nodes changed since their last write -> clock then
        self._written: dict[tuple[str, str], int] = {}  # clock reading of each node's last write

    def update_status(self, topic: str, payload: bytes, now_us: int, retained: bool = False) -> NodeEntry | None:
        """Store the status a node published on ``topic`` at ``now_us``; return the node's new entry.

        Returns None, storing nothing, for a topic that is not a node's status topic (the gateway's own
        ``.../_gateway/{id}/status``, other channels) and for an empty payload: that is the retained status being
        deleted (``mosquitto_pub -r -n``), which says nothing about the node, so its entry stays as it was.
        Raises :class:`BadStatus` for a malformed payload; the entry stays as it was. Each case is counted in
        :attr:`counts`.
        """
        try:
            parsed = parse_topic(topic)
        except BadTopic:
            parsed = None
        if parsed is None or parsed.channel is not Channel.STATUS:
            self.counts.ignored += 1
            return None
        if not payload:
            self.counts.cleared += 1
            return None
        try:
            status = parse_status(payload)
        except BadStatus as exc:
            self.counts.rejected += 1
            raise BadStatus(f"{topic}: {exc}") from None
        key = (parsed.site, parsed.node)
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM nodes WHERE site = ? AND node = ?", key).fetchone()
        if row is not None:
            merged = _row_dict(row)
        else:
            merged = dict.fromkeys(("fw", "last_error", *_INT_FIELDS), None)
            merged |= {"models": {}, "first_seen_us": now_us, "last_seen_us": now_us}
        merged |= status.fields | self._traffic_fields(key)
        heard = max(merged["last_seen_us"], self._seen.get(key, merged["last_seen_us"]))
        # a last will is the broker speaking for a node that is gone; a retained status replayed on (re)subscribe
        # is old news: neither is the node being heard now
        if status.state != OFFLINE and not retained:
            heard = max(heard, now_us)
        merged |= {"state": status.state, "last_seen_us": heard, "last_status_us": now_us}
        with self._conn:
            self._conn.execute(
                f"INSERT OR REPLACE INTO nodes ({_COLUMNS}, online) VALUES ({', '.join('?' * 18)})",
                (
                    *key,
                    merged["state"],
                    merged["fw"],
                    json.dumps(merged["models"], sort_keys=True),
                    *(merged[name] for name in ("uptime_s", "mem_free", "last_error")),
                    *(merged[name] for name in ("outbox_depth", "dropped", "connects")),
                    *(merged[name] for name in _TRAFFIC_COLUMNS),
                    merged["first_seen_us"],
                    merged["last_seen_us"],
                    merged["last_status_us"],
                    int(merged["state"] != OFFLINE),
                ),
            )
        self._seen[key] = heard
        self._unwritten.pop(key, None)
        self._written[key] = now_us
        self.counts.statuses += 1
        return _entry(merged | {"site": key[0], "node": key[1]}, now_us, self.offline_after_s)

    def frame_stored(self, site: str, node: str, values: int, received_us: int) -> None:
        """Count a frame of ``site``/``node`` that reached storage, ``values`` values of it, received at
        ``received_us``: the node was heard then. Cheap, see the module docstring.

        A node never seen before gets an entry at once, in state ``unknown`` until its status arrives.
        """
        key = (site, node)
        counted_as, traffic = self._counters(key)
        traffic.frames_stored += 1
        traffic.values_stored += values
        first = key not in self._seen
        self._seen[key] = max(received_us, self._seen.get(key, received_us))
        self._changed(key, received_us, counted_as == key, write_now=first)

    def frame_rejected(self, site: str, node: str, now_us: int) -> None:
        """Count a frame of ``site``/``node`` that went to the dead-letter store: not a sign of life, so neither
        ``last_seen_us`` nor a new entry; a node without an entry gets the count written with its first row."""
        key = (site, node)
        counted_as, traffic = self._counters(key)
        traffic.frames_rejected += 1
        self._changed(key, now_us, counted_as == key)

    def traffic(self) -> dict[tuple[str, str], NodeTraffic]:
        """A copy of each node's traffic counters (:data:`OVERFLOW` once used); answers after :meth:`close` too."""
        return {key: replace(counters) for key, counters in self._traffic.items()}

    def flush(self) -> None:
        """Write every ``last_seen_us`` and traffic counter kept in memory only."""
        if self._unwritten:
            with self._conn:
                for key in list(self._unwritten):
                    self._write(key)

    def entries(self, now_us: int) -> list[NodeEntry]:
        """Every node, sorted by site and node, judged online or offline at ``now_us``."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM nodes ORDER BY site, node").fetchall()
        out = []
        for row in rows:
            values = _row_dict(row)
            key = (values["site"], values["node"])
            values["last_seen_us"] = max(values["last_seen_us"], self._seen.get(key, values["last_seen_us"]))
            values |= self._traffic_fields(key)
            out.append(_entry(values, now_us, self.offline_after_s))
        return out

    def close(self) -> None:
        """Write what was kept in memory and close the file (:meth:`traffic` still answers)."""
        self.flush()
        self._conn.close()

    def _counters(self, key: tuple[str, str]) -> tuple[tuple[str, str], NodeTraffic]:
        """The counters ``key``'s traffic goes to, and the key they are kept under: ``key`` or :data:`OVERFLOW`."""
        counters = self._traffic.get(key)
        if counters is None:
            if len(self._traffic) >= self.max_counted_nodes:
                key = OVERFLOW
            counters = self._traffic.setdefault(key, NodeTraffic())
        return key, counters

    def _traffic_fields(self, key: tuple[str, str]) -> dict[str, int | None]:
        counters = self._traffic.get(key)
        if counters is None:
            return dict.fromkeys(_TRAFFIC_COLUMNS, None)
        return {name: getattr(counters, name) for name in _TRAFFIC_COLUMNS}

    def _changed(self, key: tuple[str, str], now_us: int, counted: bool, write_now: bool = False) -> None:
        """Note that ``key``'s last-seen time or counters changed at ``now_us``; write them if due."""
        if not counted and key not in self._seen:
            return  # nothing of this node to write: its traffic went to the overflow tally
        self._unwritten[key] = max(now_us, self._unwritten.get(key, now_us))
        written = self._written.get(key)
        if write_now or written is None or now_us - written >= WRITE_INTERVAL_US:
            with self._conn:
                self._write(key)

    def _write(self, key: tuple[str, str]) -> None:
        """Write ``key``'s last-seen time and counters; a node only rejected so far has no row, and gets none."""
        counters = tuple(self._traffic_fields(key).values())
        seen_us = self._seen.get(key)
        if seen_us is None:
            self._conn.execute(
                f"UPDATE nodes SET {', '.join(f'{c} = ?' for c in _TRAFFIC_COLUMNS)} WHERE site = ? AND node = ?",
                (*counters, *key),
            )
        else:
            self._conn.execute(
                f"INSERT INTO nodes (site, node, state, models, {', '.join(_TRAFFIC_COLUMNS)}, first_seen_us,"
                " last_seen_us, online) VALUES (?, ?, ?, '{}', ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (site, node) DO UPDATE SET last_seen_us = max(last_seen_us, excluded.last_seen_us),"
                f" online = (state != ?), {', '.join(f'{c} = excluded.{c}' for c in _TRAFFIC_COLUMNS)}",
                (*key, UNKNOWN, *counters, seen_us, seen_us, OFFLINE),
            )
        self._written[key] = self._unwritten.pop(key)


def read_entries(
    path: Path, now_us: int, offline_after_s: float = DEFAULT_OFFLINE_AFTER_S, site: str | None = None
) -> list[NodeEntry]:
    """Read a registry file read-only (the gateway may be writing it: WAL lets readers in); filter by ``site``.

    Raises :class:`RegistryUnavailable` when the file is missing or is not a node registry.
    """
    if not path.is_file():
        raise RegistryUnavailable(
            f"no node registry at {path}: the gateway creates it when it first sees a node"
            " (check --state-dir or gateway.state_dir)"
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise RegistryUnavailable(f"cannot open the node registry {path}: {exc}") from None
    try:
        present = _present_columns(conn)  # a file written before the traffic counters existed lacks them
        query = f"SELECT {', '.join(c if c in present else f'NULL AS {c}' for c in _COLUMN_NAMES)} FROM nodes"
        query += " WHERE site = ? ORDER BY site, node" if site is not None else " ORDER BY site, node"
        rows = conn.execute(query, (site,) if site is not None else ()).fetchall()
    except sqlite3.Error as exc:
        raise RegistryUnavailable(f"{path} is not a readable node registry: {exc}") from None
    finally:
        conn.close()
    return [_entry(_row_dict(row), now_us, offline_after_s) for row in rows]


def _present_columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(nodes)")}


def _row_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    values = dict(zip(_COLUMN_NAMES, row, strict=True))
    values["models"] = json.loads(values["models"])
    return values


def _entry(values: Mapping[str, Any], now_us: int, offline_after_s: float) -> NodeEntry:
    return NodeEntry(
        site=values["site"],
        node=values["node"],
        state=values["state"],
        fw=values["fw"],
        models=types.MappingProxyType(dict(values["models"])),
        uptime_s=values["uptime_s"],
        mem_free=values["mem_free"],
        last_error=values["last_error"],
        outbox_depth=values["outbox_depth"],
        dropped=values["dropped"],
        connects=values["connects"],
        frames_stored=values["frames_stored"],
        values_stored=values["values_stored"],
        frames_rejected=values["frames_rejected"],
        first_seen_us=values["first_seen_us"],
        last_seen_us=values["last_seen_us"],
        last_status_us=values["last_status_us"],
        as_of_us=now_us,
        offline_after_s=offline_after_s,
    )
