"""The disk spool between MQTT ingest and storage: SQLite in WAL mode.

A message is acknowledged to the broker only after its spool transaction commits, so a crash at any instant loses
nothing: what was acknowledged is on disk, what was not is redelivered by the broker. The spool also
de-duplicates end to end: each frame is keyed by (site, node, stream, sequence number, first-sample time), and a
key stays known for ``dedup_window_s`` after its frame was stored, so a node's or broker's retry is stored once.
The timestamp is part of the key so that a node which lost its sequence counter (a wiped flash) and counts from
zero again is not mistaken for a retry.

Bounded: at most ``max_frames`` frames wait for storage. Past that the configured policy holds — ``drop-oldest``
deletes the oldest waiting frames, ``reject-new`` refuses the incoming ones (the caller dead-letters them) —
and the caller counts every frame either way.

Corruption (R12): opening a damaged file moves it aside as ``*.corrupt-<time>``, starts a fresh spool and copies
in every row that still reads back with an intact frame checksum; the rest stay in the quarantined file.

Not thread-safe: one thread owns a Spool (the gateway runs every call on one worker thread).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgegen.gateway.errors import GatewayError

log = logging.getLogger(__name__)

OverflowPolicy = Literal["drop-oldest", "reject-new"]
SyncMode = Literal["full", "normal"]

PENDING = 0
DONE = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    node TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    t0_us INTEGER NOT NULL DEFAULT 0,
    received_us INTEGER NOT NULL,
    state INTEGER NOT NULL,        -- 0: waiting for storage; 1: stored (kept, without payload, for de-duplication)
    topic TEXT,
    payload BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS frames_key ON frames (site, node, stream, seq, t0_us);
CREATE INDEX IF NOT EXISTS frames_done ON frames (state, received_us);
CREATE INDEX IF NOT EXISTS frames_waiting ON frames (state, id);  -- take() and drop-oldest read in id order
"""


class SpoolError(GatewayError):
    """The spool cannot take or give frames (disk full, I/O error): the caller retries later."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Incoming:
    """A validated message to spool."""

    site: str
    node: str
    stream: str
    seq: int
    topic: str
    payload: bytes
    t0_us: int = 0  # the frame's first-sample timestamp: part of the de-duplication key


@dataclass(frozen=True, slots=True)
class Spooled:
    """A frame waiting for storage."""

    id: int
    site: str
    node: str
    stream: str
    seq: int
    received_us: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class AddResult:
    """What became of a batch handed to :meth:`Spool.add`, message by message (same order)."""

    accepted: tuple[bool, ...]  # spooled now (False: a duplicate or refused)
    duplicates: int
    rejected: tuple[int, ...]  # indexes refused by the reject-new policy
    dropped_oldest: int  # waiting frames deleted by the drop-oldest policy
    ids: tuple[int | None, ...] = ()  # the spool id of each message spooled now (None for the others)


@dataclass(frozen=True, slots=True)
class Salvage:
    """Outcome of opening a damaged spool file."""

    quarantined: Path
    salvaged: int
    lost: int  # rows that could not be read back intact (they stay in the quarantined file)


class Spool:
    def __init__(
        self,
        path: Path,
        max_frames: int = 1_000_000,
        policy: OverflowPolicy = "drop-oldest",
        dedup_window_s: float = 3600.0,
        sync: SyncMode = "full",
    ) -> None:
        self.path = path
        self.max_frames = max_frames
        self.policy: OverflowPolicy = policy
        self.dedup_window_s = dedup_window_s
        self.salvage: Salvage | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect(path, sync)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # the latter: a garbled schema in the message
            if not _damaged(exc):  # locked, disk full, I/O error: the file may be fine, never move it aside
                raise SpoolError(f"spool {path}: {exc}") from exc
            self.salvage = self._quarantine(path, sync, exc)
            self._conn = self._connect(path, sync)
        self.pending = self._count_pending()

    @staticmethod
    def _connect(path: Path, sync: SyncMode) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit reaches the disk before we acknowledge (power loss too); NORMAL: survives a crash
            # of this process but not of the machine. Either way a commit is atomic.
            conn.execute(f"PRAGMA synchronous={sync.upper()}")
            conn.executescript(SCHEMA)
            # integrity_check, not quick_check: an index that disagrees with the table makes take() return
            # stored rows (payload NULL) or the same row twice
            result = conn.execute("PRAGMA integrity_check").fetchone()
            if result is None or result[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity_check: {result}")
            # it checks structure, not values: a waiting row whose text no longer decodes (every take() would
            # fail) or whose payload is gone is damage too
            for *text, blob in conn.execute(
                "SELECT site, node, stream, topic, typeof(payload) = 'blob' FROM frames WHERE state = 0"
            ):
                if not blob or not all(isinstance(v, str) for v in text):
                    raise sqlite3.DatabaseError("a waiting row is damaged")
        except BaseException:
            conn.close()
            raise
        return conn

    # -- ingest side -----------------------------------------------------------------------------------------

    def add(self, messages: Sequence[Incoming], now_us: int | None = None) -> AddResult:
        """Spool ``messages`` in one transaction; return once it is committed (then they may be acknowledged)."""
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        accepted: list[bool] = []
        rejected: list[int] = []
        ids: list[int | None] = []
        duplicates = 0
        dropped = 0
        try:
            with self._transaction() as conn:
                for index, m in enumerate(messages):
                    if self.pending >= self.max_frames:
                        if self._known(conn, m):  # a duplicate costs no frame, whatever the policy
                            duplicates += 1
                            accepted.append(False)
                            continue
                        if self.policy == "reject-new":
                            rejected.append(index)
                            accepted.append(False)
                            continue
                        dropped += self._drop_oldest(conn, self.pending - self.max_frames + 1)
                    cursor = conn.execute(
                        "INSERT OR IGNORE INTO frames"
                        " (site, node, stream, seq, t0_us, received_us, state, topic, payload)"
                        " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                        (m.site, m.node, m.stream, m.seq, m.t0_us, now_us, m.topic, m.payload),
                    )
                    fresh = cursor.rowcount == 1
                    accepted.append(fresh)
                    ids.extend([None] * (index - len(ids)))
                    ids.append(cursor.lastrowid if fresh else None)
                    if fresh:
                        self.pending += 1
                    else:
                        duplicates += 1
        except sqlite3.Error as exc:
            self.pending = self._count_pending()
            raise SpoolError(f"spool {self.path}: {exc}") from exc
        ids.extend([None] * (len(messages) - len(ids)))
        return AddResult(tuple(accepted), duplicates, tuple(rejected), dropped, tuple(ids))

    @staticmethod
    def _known(conn: sqlite3.Connection, m: Incoming) -> bool:
        row = conn.execute(
            "SELECT 1 FROM frames WHERE site = ? AND node = ? AND stream = ? AND seq = ? AND t0_us = ?",
            (m.site, m.node, m.stream, m.seq, m.t0_us),
        ).fetchone()
        return row is not None

    def _drop_oldest(self, conn: sqlite3.Connection, n: int) -> int:
        """Forget the ``n`` oldest waiting frames (their keys go too: a retry of them may be stored again)."""
        cursor = conn.execute(
            "DELETE FROM frames WHERE id IN (SELECT id FROM frames WHERE state = 0 ORDER BY id LIMIT ?)", (n,)
        )
        self.pending -= cursor.rowcount
        return cursor.rowcount

    # -- storage side ----------------------------------------------------------------------------------------

    def take(self, limit: int, after_id: int = 0) -> list[Spooled]:
        """The oldest waiting frames with id > ``after_id`` (the caller's batches in flight are not repeated)."""
        try:
            rows = self._conn.execute(
                "SELECT id, site, node, stream, seq, received_us, topic, payload FROM frames"
                " WHERE state = 0 AND id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: {exc}") from exc
        return [Spooled(*row) for row in rows]

    def done(self, ids: Iterable[int], now_us: int | None = None) -> int:
        """Mark frames stored (or dead-lettered): their payload goes, their key stays for de-duplication for
        ``dedup_window_s`` from now (a frame that waited out a long outage is still protected after it)."""
        keys = [(i,) for i in ids]
        try:
            with self._transaction() as conn:
                before = conn.total_changes
                stored_us = now_us if now_us is not None else time.time_ns() // 1000
                conn.executemany(
                    "UPDATE frames SET state = 1, topic = NULL, payload = NULL, received_us = ?"
                    " WHERE id = ? AND state = 0",
                    [(stored_us, i) for (i,) in keys],
                )
                changed = conn.total_changes - before
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: {exc}") from exc
        self.pending -= changed
        return changed

    def prune(self, now_us: int | None = None) -> int:
        """Forget the keys of frames stored longer ago than the de-duplication window."""
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        cutoff = now_us - int(self.dedup_window_s * 1e6)
        try:
            with self._transaction() as conn:
                return conn.execute("DELETE FROM frames WHERE state = 1 AND received_us < ?", (cutoff,)).rowcount
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: {exc}") from exc

    def _count_pending(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM frames WHERE state = 0").fetchone()[0])

    def known_keys(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM frames").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    # -- plumbing --------------------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    @staticmethod
    def _quarantine(path: Path, sync: SyncMode, error: Exception) -> Salvage:
        """Move a damaged spool aside and copy every waiting frame that still reads back intact into a new one."""
        from edgegen.gateway.protocol import FrameError, decode_message

        stamp = time.strftime("%Y%m%dT%H%M%S") + f".{time.time_ns() % 1_000_000_000:09d}"  # two salvages a second
        quarantined = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(path) + suffix)
            if source.exists():
                source.rename(Path(str(quarantined) + suffix))
        log.error("spool %s is damaged (%s); moved to %s, salvaging", path, error, quarantined)
        rows = _readable_rows(quarantined)
        fresh = Spool._connect(path, sync)
        salvaged = lost = 0
        try:
            conn = fresh
            conn.execute("BEGIN IMMEDIATE")
            for row in rows:
                if row is None:
                    lost += 1
                    continue
                site, node, stream, seq, t0_us, received_us, state, topic, payload = row
                if state == PENDING:
                    try:
                        decode_message(payload or b"")  # the CRC (or the JSON form) says whether it survived
                    except FrameError:
                        lost += 1
                        continue
                    salvaged += 1
                elif state != DONE:
                    lost += 1
                    continue
                conn.execute(
                    "INSERT OR IGNORE INTO frames"
                    " (site, node, stream, seq, t0_us, received_us, state, topic, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (site, node, stream, seq, t0_us, received_us, state, topic, payload),
                )
            conn.execute("COMMIT")
        finally:
            fresh.close()
        log.error("spool salvage: %d waiting frames recovered, %d rows lost to %s", salvaged, lost, quarantined)
        return Salvage(quarantined, salvaged, lost)


CORRUPTION_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def _damaged(error: BaseException) -> bool:
    """A damaged file (salvage it), not a passing condition such as a lock or a full disk (report it)."""
    if isinstance(error, UnicodeDecodeError):
        return True
    if "unsupported file format" in str(error):  # a header field out of range: SQLITE_ERROR, but damage
        return True
    code = getattr(error, "sqlite_errorcode", None)
    return code is None or code & 0xFF in CORRUPTION_CODES  # None: our own checks found the damage


Row = tuple[str, str, str, int, int, int, int, str | None, bytes | None]


def _readable_rows(path: Path) -> list[Row | None]:
    """Every row of a damaged spool that SQLite can still read; None for each row id that fails."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    out: list[Row | None] = []
    try:
        # read what is left of a truncated file (SQLite refuses a file shorter than its header says otherwise)
        conn.execute("PRAGMA writable_schema=ON")
        # two queries: each reads an end of the table itself (together they would scan an index, and a damaged
        # index would lose every row); the last page gone (truncated), the AUTOINCREMENT counter bounds the ids
        low = _scalar(conn, "SELECT min(id) FROM frames")
        high = _scalar(conn, "SELECT max(id) FROM frames")
        if high is None:
            high = _scalar(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'frames'")
        if low is None or high is None:
            return out
        start = low
        while start <= high:
            try:
                out.extend(_rows(conn, start, start + 512))
            except (sqlite3.Error, UnicodeDecodeError):  # a damaged page: read this range row by row
                for row_id in range(start, min(start + 512, high + 1)):
                    try:
                        out.extend(_rows(conn, row_id, row_id + 1))
                    except (sqlite3.Error, UnicodeDecodeError):
                        out.append(None)
            start += 512
            try:  # jump a gap in the ids at once (a damaged row id can be astronomically large)
                following = conn.execute("SELECT min(id) FROM frames WHERE id >= ?", (start,)).fetchone()[0]
            except (sqlite3.Error, UnicodeDecodeError):
                continue
            start = high + 1 if following is None else max(start, following)
    finally:
        conn.close()
    return out


def _scalar(conn: sqlite3.Connection, sql: str) -> int | None:
    try:
        row = conn.execute(sql).fetchone()
    except (sqlite3.Error, UnicodeDecodeError):
        return None
    return row[0] if row is not None and isinstance(row[0], int) else None


def _rows(conn: sqlite3.Connection, low: int, high: int) -> list[Row | None]:
    # one row: a point lookup, which (unlike a range scan) does not step on into the next, maybe damaged, page
    where, args = ("id = ?", (low,)) if high == low + 1 else ("id >= ? AND id < ?", (low, high))
    rows = conn.execute(
        f"SELECT site, node, stream, seq, t0_us, received_us, state, topic, payload FROM frames WHERE {where}",
        args,
    ).fetchall()
    return [tuple(r) if _well_typed(r) else None for r in rows]


def _well_typed(row: tuple[object, ...]) -> bool:
    site, node, stream, seq, t0_us, received_us, state, topic, payload = row
    strings = all(isinstance(v, str) for v in (site, node, stream))
    ints = all(isinstance(v, int) for v in (seq, t0_us, received_us, state))
    return strings and ints and (state != PENDING or (isinstance(topic, str) and isinstance(payload, bytes)))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                if self.conn.in_transaction:  # a COMMIT that failed (disk full) leaves the transaction open
                    self.conn.execute("ROLLBACK")
                raise
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
