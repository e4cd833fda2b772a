"""What happens to a rejected message: a counter by cause, a dead-letter record, and a log line that cannot flood.

Logging is rate-limited per cause: the first rejection of a cause in each interval is logged with its detail, the
rest only counted, and the next logged line says how many were suppressed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgegen.gateway.deadletter import DeadLetterStore
from edgegen.gateway.metrics import GatewayMetrics
from edgegen.gateway.protocol import FrameError

log = logging.getLogger(__name__)


@dataclass
class _Window:
    started: float
    suppressed: int = 0


class RejectHandler:
    def __init__(
        self,
        metrics: GatewayMetrics,
        dead_letters: DeadLetterStore,
        log_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.log_interval_s = log_interval_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def reject(self, topic: str, payload: bytes, error: FrameError) -> None:
        cause = error.cause
        self.metrics.frames_rejected.labels(cause=cause).inc()
        evicted = self.dead_letters.add(topic, payload, cause, str(error))
        if evicted:
            self.metrics.dead_letters_dropped.inc(evicted)
        self._log(cause, topic, error)

    def _log(self, cause: str, topic: str, error: FrameError) -> None:
        now = self._clock()
        window = self._windows.get(cause)
        if window is not None and now - window.started < self.log_interval_s:
            window.suppressed += 1
            return
        suppressed = window.suppressed if window is not None else 0
        self._windows[cause] = _Window(started=now)
        log.warning(
            "rejected message on %s: %s: %s%s",
            topic,
            cause,
            error,
            f" ({suppressed} more {cause} rejections suppressed)" if suppressed else "",
        )
