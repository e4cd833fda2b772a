"""Time-ordered splits and windows that never let the future leak into the past."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.data.series import Series


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


def normal_runs(series: Series, min_length: int) -> list[Series]:
    """The stretches of ``series`` not labelled anomalous, each at least ``min_length`` samples long (so windows
    never span a removed stretch); all of it when it has no labels."""
    if series.anomaly is None:
        return [series] if len(series) >= min_length else []
    runs = []
    start = None
    for i, flag in enumerate([*series.anomaly.tolist(), 1]):
        if not flag and start is None:
            start = i
        elif flag and start is not None:
            if i - start >= min_length:
                runs.append(series.slice(start, i))
            start = None
    return runs


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
