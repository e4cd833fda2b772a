"""Dead letters: every rejected message, kept with its cause for inspection and replay.

A bounded SQLite table in the gateway's state directory. When full, the oldest record goes and a counter says so.
Writes are small local inserts (WAL, synchronous=NORMAL) made on the event loop: tens of microseconds each.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_us INTEGER NOT NULL,
    topic TEXT NOT NULL,
    cause TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL,      -- the message's full size; payload may be cut to the configured limit
    payload BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at_us: int
    topic: str
    cause: str
    detail: str
    size: int
    payload: bytes


class DeadLetterStore:
    def __init__(self, path: Path, max_records: int, max_payload_bytes: int) -> None:
        self.path = path
        self.max_records = max_records
        self.max_payload_bytes = max_payload_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._count: int = self._conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]

    def add(self, topic: str, payload: bytes, cause: str, detail: str) -> int:
        """Store one rejected message; return how many old records were evicted to make room."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO dead_letters (received_at_us, topic, cause, detail, size, payload)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (time.time_ns() // 1000, topic, cause, detail, len(payload), payload[: self.max_payload_bytes]),
            )
            self._count += 1
            evicted = max(0, self._count - self.max_records)
            if evicted:
                self._conn.execute(
                    "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters ORDER BY id LIMIT ?)",
                    (evicted,),
                )
                self._count -= evicted
        return evicted

    def records(self, limit: int = 1000) -> list[DeadLetter]:
        rows = self._conn.execute(
            "SELECT received_at_us, topic, cause, detail, size, payload FROM dead_letters ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self._conn.close()
