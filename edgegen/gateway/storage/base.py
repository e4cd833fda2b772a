"""The interface every storage backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from edgegen.gateway.storage.records import Writable


class Storage(Protocol):
    """A place for accepted frames. ``write`` is all-or-nothing from the caller's view: it returns once the
    backend has durably taken every point, or raises a :class:`~gateway.storage.errors.StorageError`.

    Writes are idempotent: a point is identified by measurement, tags and timestamp, so writing a batch twice
    leaves the same data (InfluxDB's rule, which the SQLite backend follows).
    """

    name: str

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Writable]) -> int:
        """Store the records' points; return how many values were stored."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ValueCounter(Protocol):
    """A backend that can count what it holds, for the demo's summary and the end-to-end tests."""

    async def count_values(self, site: str, since_us: int = 0) -> dict[tuple[str, str], int]:
        """Stored sample values per (node, stream) at ``site`` with timestamps >= ``since_us``."""
        ...


@runtime_checkable
class LineWriter(Protocol):
    """A backend that takes InfluxDB line protocol as is: the storage writer encodes each record once, keeps its
    lines (to split a batch or name a refused record) and hands them over without a second encoding."""

    async def write_lines(self, lines: Sequence[str]) -> None: ...
