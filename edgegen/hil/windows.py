"""The windows a HIL run feeds: raw int16 counts (samples x channels), recorded (a CSV) or the firmware's
deterministic test signal (firmware_py.sources.SineSource, run here on CPython: integer-only, so a board would
produce the same counts bit for bit)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgegen.firmware_py.sources import SineSource
from edgegen.hil.errors import InputError
from edgegen.models.artifact import FeatureSpec

SINE_AMPLITUDE = 20000  # firmware_py.config's defaults for a "sine" source
SINE_NOISE = 400
SINE_SEED = 1


@dataclass(frozen=True)
class Windows:
    counts: npt.NDArray[np.int16]  # (windows, samples, channels)
    source: str  # for the report: where the samples came from


def period_us(f: FeatureSpec) -> int:
    return round(1_000_000 / f.sample_rate_hz)  # as firmware_py.app computes it from rate_hz


def sine(f: FeatureSpec, n: int) -> Windows:
    channels = len(f.channels)
    freqs = [1.3 * (c + 1) for c in range(channels)]  # the app's default frequencies
    source = SineSource(channels, f.window, period_us(f), 0, freqs, SINE_AMPLITUDE, SINE_NOISE, SINE_SEED)
    samples = array("h", bytes(2 * f.window * channels))
    out = np.empty((n, f.window, channels), dtype=np.int16)
    for i in range(n):
        source.read(samples)
        out[i] = np.frombuffer(samples, dtype=np.int16).reshape(f.window, channels)
    what = f"SineSource (firmware test signal: amplitude {SINE_AMPLITUDE}, noise {SINE_NOISE}, seed {SINE_SEED})"
    return Windows(out, what)


def from_csv(path: Path, f: FeatureSpec, n: int) -> Windows:
    """Consecutive windows of a CSV (models.data.tables.csv_file) as the node would send them: physical values
    over the channel's scale, rounded to int16 counts. Columns by the manifest's channel names, else in order."""
    from edgegen.models.data.tables import csv_file
    from edgegen.models.errors import DataError

    try:
        series = csv_file(path)
    except DataError as exc:
        raise InputError(str(exc)) from exc
    wanted = list(f.channels)
    if set(wanted) <= set(series.channels):
        values = series.values[:, [series.channels.index(c) for c in wanted]]
    elif len(series.channels) == len(wanted):
        values = series.values
    else:
        raise InputError(
            f"{path}: {len(series.channels)} columns {list(series.channels)}; "
            f"the model takes {len(wanted)}: {wanted}"
        )
    if np.isnan(values).any():
        raise InputError(f"{path}: missing values (NaN) in the model's channels")
    counts = np.clip(np.round(values / np.asarray(f.scales)), -32768, 32767).astype(np.int16)
    available = len(counts) // f.window
    if available == 0:
        raise InputError(f"{path}: {len(counts)} samples, fewer than one window of {f.window}")
    k = min(n, available)
    windows = counts[: k * f.window].reshape(k, f.window, len(wanted))
    return Windows(windows, f"{path.name} ({k} windows of {f.window} samples from {len(counts)} rows)")
