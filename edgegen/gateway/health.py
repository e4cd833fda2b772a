"""Readiness checks and liveness heartbeats that the gateway's components report, for ``/readyz`` and ``/healthz``.

Two separate questions:

* **Ready** -- can the gateway do its job right now? Components report named checks with :meth:`Health.set`
  (``health.set("storage", False, "InfluxDB: connection refused")``); the gateway is ready when every check is ok.
  A name passed in ``expected`` counts as failing until its component first reports it.
* **Alive** -- is the process making progress? Each long-running loop calls :meth:`Health.heartbeat` at least once
  per ``stale_after_s``; the process is alive while no registered loop is stale. A loop that ends on purpose
  calls :meth:`Health.remove` so its silence is not taken for a hang.

One :class:`Health` per gateway instance (no module-level state); the clocks are injectable, so tests need not
sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_STALE_AFTER_S = 30.0


@dataclass(frozen=True)
class Check:
    """A readiness check's latest report; ``since`` (wall-clock seconds) is when ``ok`` last changed."""

    ok: bool
    detail: str
    since: float


@dataclass(frozen=True)
class Loop:
    """A watched loop: when it last beat (``clock`` seconds) and how long it may stay silent."""

    last_beat: float
    stale_after_s: float


def _iso(wall_s: float) -> str:
    return datetime.fromtimestamp(wall_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Health:
    """Named readiness checks and loop heartbeats; safe to call from any thread.

    ``clock`` (monotonic seconds) times heartbeats; ``wall_clock`` (Unix seconds) dates checks' ``since``.
    """

    def __init__(
        self,
        expected: Iterable[str] = (),
        *,
        default_stale_after_s: float = DEFAULT_STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if default_stale_after_s <= 0:
            raise ValueError("default_stale_after_s must be positive")
        self.clock = clock
        self.wall_clock = wall_clock
        self.default_stale_after_s = default_stale_after_s
        self._lock = threading.Lock()
        started = wall_clock()
        self._checks: dict[str, Check] = {name: Check(False, "not reported yet", started) for name in expected}
        self._loops: dict[str, Loop] = {}

    # -- readiness ---------------------------------------------------------------------------------------------

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        """Report check ``name``; ``since`` moves only when ``ok`` changes, so it says how long it has been so."""
        with self._lock:
            previous = self._checks.get(name)
            since = previous.since if previous is not None and previous.ok == ok else self.wall_clock()
            self._checks[name] = Check(ok, detail, since)

    def check(self, name: str) -> Check | None:
        with self._lock:
            return self._checks.get(name)

    def ready(self) -> bool:
        """True when every readiness check is ok (vacuously true with none registered)."""
        with self._lock:
            return all(check.ok for check in self._checks.values())

    def failing(self) -> dict[str, str]:
        """The failing checks: name -> detail."""
        with self._lock:
            return {name: check.detail for name, check in self._checks.items() if not check.ok}

    # -- liveness ----------------------------------------------------------------------------------------------

    def heartbeat(self, name: str, stale_after_s: float | None = None) -> None:
        """Loop ``name`` is making progress. The first beat registers it (``stale_after_s`` or the default);
        a later one may change its ``stale_after_s``."""
        if stale_after_s is not None and stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        now = self.clock()
        with self._lock:
            previous = self._loops.get(name)
            if stale_after_s is None:
                stale_after_s = previous.stale_after_s if previous is not None else self.default_stale_after_s
            self._loops[name] = Loop(now, stale_after_s)

    def stale(self, now: float | None = None) -> dict[str, float]:
        """The loops silent for longer than their ``stale_after_s``: name -> seconds since their last beat."""
        now = self.clock() if now is None else now
        with self._lock:
            return {
                name: now - loop.last_beat
                for name, loop in self._loops.items()
                if now - loop.last_beat > loop.stale_after_s
            }

    def alive(self, now: float | None = None) -> bool:
        """False when any registered loop has not beaten within its ``stale_after_s`` (``now`` in ``clock`` s)."""
        return not self.stale(now)

    # -- both --------------------------------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        """Forget the check and the loop called ``name`` (a component that stopped on purpose)."""
        with self._lock:
            self._checks.pop(name, None)
            self._loops.pop(name, None)

    def snapshot(self) -> dict[str, Any]:
        """Readiness, JSON-serialisable::

        {"status": "ready" | "not_ready",
         "checks": {"storage": {"ok": false, "detail": "...", "since": "2024-05-01T12:00:00.000Z"}, ...}}
        """
        with self._lock:
            checks = dict(self._checks)
        return {
            "status": "ready" if all(c.ok for c in checks.values()) else "not_ready",
            "checks": {
                name: {"ok": c.ok, "detail": c.detail, "since": _iso(c.since)}
                for name, c in sorted(checks.items())
            },
        }

    def liveness(self, now: float | None = None) -> dict[str, Any]:
        """Liveness, JSON-serialisable::

        {"status": "alive" | "stale",
         "loops": {"writer": {"ok": true, "last_beat_age_s": 0.2, "stale_after_s": 30.0}, ...}}
        """
        now = self.clock() if now is None else now
        with self._lock:
            loops = dict(self._loops)
        report = {
            name: {
                "ok": now - loop.last_beat <= loop.stale_after_s,
                "last_beat_age_s": round(now - loop.last_beat, 3),
                "stale_after_s": loop.stale_after_s,
            }
            for name, loop in sorted(loops.items())
        }
        return {"status": "alive" if all(r["ok"] for r in report.values()) else "stale", "loops": report}
