"""Time-ordered splits and windows that never let the future leak into the past."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.data.series import Series


def time_split(series: Series, train_fraction: float) -> tuple[Series, Series]:
    """The first ``train_fraction`` of the samples and the rest: never shuffled, never overlapping."""
    if not 0 < train_fraction < 1:
        raise ValueError("train_fraction must lie in (0, 1)")
    cut = int(len(series) * train_fraction)
    return series.slice(0, cut), series.slice(cut, len(series))


def windows(values: npt.NDArray[Any], window: int, hop: int) -> npt.NDArray[Any]:
    """(count, window, channels) windows starting every ``hop`` samples; the last partial window is dropped."""
    n = len(values)
    if n < window:
        return np.empty((0, window, values.shape[1]))
    starts = np.arange(0, n - window + 1, hop)
    return np.stack([values[s : s + window] for s in starts])


def fingerprint(series: Sequence[Series]) -> str:
    """SHA-256 over names, timestamps, values and labels, in order: the training data's identity."""
    h = hashlib.sha256()
    for s in series:
        h.update(s.name.encode())
        h.update(",".join(s.channels).encode())
        h.update(np.ascontiguousarray(s.timestamps_us).tobytes())
        h.update(np.ascontiguousarray(s.values).tobytes())
        if s.anomaly is not None:
            h.update(np.ascontiguousarray(s.anomaly).tobytes())
    return h.hexdigest()
