"""Bringing a node's samples to a model's time step.

Nodes sample at their own rate and stamp samples with their own clocks; a generative model steps at a fixed period.
A :class:`Resampler` averages each channel's finite samples over bins of that period (bin k covers
``[k * period, (k + 1) * period)`` on the node's clock) and emits a bin once a later sample shows it is complete.
Missing bins up to ``max_gap`` are filled by linear interpolation; a longer silence starts a new segment, where the
caller restarts the model's context. Samples older than the bin being filled (a frame that arrived late, after a
reconnect) are counted and skipped — they are still stored raw, only the live score does not rewind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive model-step rows; ``restart``: a gap longer than ``max_gap`` came before the first."""

    ts_us: I64  # each bin's start on the node's clock
    rows: F64
    restart: bool


@dataclass
class Resampler:
    period_us: int
    max_gap_us: int
    channels: int
    late_samples: int = 0
    filled_bins: int = 0
    restarts: int = 0
    _bin: int | None = None  # the bin being filled
    _sum: F64 = field(init=False)
    _count: F64 = field(init=False)
    _last_bin: int | None = None  # the last bin emitted
    _last_row: F64 | None = None

    def __post_init__(self) -> None:
        if self.period_us <= 0:
            raise ValueError("period_us must be positive")
        self._sum = np.zeros(self.channels)
        self._count = np.zeros(self.channels)

    def push(self, ts_us: I64, values: F64) -> list[Segment]:
        """Add samples (timestamps ascending within the call); return the bins they completed."""
        if values.shape[1] != self.channels:
            raise ValueError(f"{values.shape[1]} channels, expected {self.channels}")
        bins = np.floor_divide(ts_us, self.period_us)
        if self._bin is not None and len(bins) and bins[0] < self._bin:
            keep = bins >= self._bin
            self.late_samples += int(len(bins) - np.count_nonzero(keep))
            bins, values = bins[keep], values[keep]
        out: list[tuple[int, F64]] = []
        if len(bins):
            if bins[0] == bins[-1] and not (bins != bins[0]).any():  # the common case: the frame in one bin
                spans = [(0, len(bins))]
            else:
                starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
                spans = list(zip(starts.tolist(), [*starts[1:].tolist(), len(bins)], strict=True))
            all_finite = bool(np.isfinite(values).all())
            for s, e in spans:
                k = int(bins[s])
                if self._bin is not None and k < self._bin:  # out of order inside the call
                    self.late_samples += e - s
                    continue
                if self._bin is not None and k != self._bin:
                    row = self._close(out[-1][1] if out else self._last_row)  # the last row closed, this call too
                    if row is not None:
                        out.append((self._bin, row))
                if self._bin != k:
                    self._bin = k
                    self._sum[:] = 0.0
                    self._count[:] = 0.0
                chunk = values[s:e]
                if all_finite:
                    self._sum += chunk.sum(axis=0)
                    self._count += e - s
                else:
                    finite = np.isfinite(chunk)
                    self._sum += np.where(finite, chunk, 0.0).sum(axis=0)
                    self._count += finite.sum(axis=0)
        return self._segments(out)

    def _close(self, last_row: F64 | None) -> F64 | None:
        """The finished bin's row: channel means; a channel with no finite sample repeats its last value."""
        with np.errstate(invalid="ignore", divide="ignore"):
            row = self._sum / self._count
        missing = self._count == 0
        if missing.any():
            if last_row is None:
                return None
            row = np.where(missing, last_row, row)
        return np.asarray(row, dtype=np.float64)

    def _segments(self, bins: list[tuple[int, F64]]) -> list[Segment]:
        segments: list[Segment] = []
        ts: list[int] = []
        rows: list[F64] = []
        restart = False
        max_missing = self.max_gap_us // self.period_us
        for k, row in bins:
            if self._last_bin is not None and self._last_row is not None:
                missing = k - self._last_bin - 1
                if missing > max_missing:
                    if rows:
                        segments.append(Segment(np.asarray(ts, dtype=np.int64), np.stack(rows), restart))
                    ts, rows, restart = [], [], True
                    self.restarts += 1
                elif missing > 0:
                    for j in range(1, missing + 1):
                        w = j / (missing + 1)
                        ts.append((self._last_bin + j) * self.period_us)
                        rows.append((1 - w) * self._last_row + w * row)
                    self.filled_bins += missing
            ts.append(k * self.period_us)
            rows.append(row)
            self._last_bin, self._last_row = k, row
        if rows:
            segments.append(Segment(np.asarray(ts, dtype=np.int64), np.stack(rows), restart))
        return segments
