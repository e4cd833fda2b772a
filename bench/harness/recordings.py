"""Recordings with known timing, for replay timing (bench/replay_timing.py) and the replay tests."""

from __future__ import annotations

import numpy as np

from edgegen.models.data.series import Series

START_US = 1_600_000_000_000_000  # the recordings' first sample is one gap after this


def jittered(n: int, gap_us: int, jitter_us: int, channels: int = 2, seed: int = 1) -> Series:
    """``n`` samples ``gap_us`` +- ``jitter_us`` (uniform) apart, of one or two channels: a sine rounded to three
    decimals and Gaussian noise."""
    rng = np.random.default_rng(seed)
    ts = START_US + np.cumsum(gap_us + rng.integers(-jitter_us, jitter_us + 1, n)).astype(np.int64)
    values = np.stack([np.round(np.sin(np.arange(n) / 7) * 3, 3), np.round(rng.normal(0, 1, n), 3)], axis=1)
    return Series("jittered", ts, values[:, :channels], ("a", "b")[:channels])
