"""The node-model task on a data set: windows for training, calibration and held-back evaluation.

SKAB, following its leaderboard protocol: in every labelled experiment, rows 0-399 are the training part and rows
400+ are held back, labelled, for evaluation; the anomaly-free run is training data too. Rows 0-399 are normal
operation except in other/2, whose labelled anomaly starts at row 104: the networks learn from the stretches
labelled normal only, while the gateway's per-experiment calibration uses rows 0-399 as the leaderboard does.
Each training part is split in time (first 80 % train, last 20 % validation) so no window of the future leaks into
training. Windows are normalised per channel with the training part's mean and standard deviation, and the int16
scales a node sends its counts with are chosen from the training range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgegen.models.data import Series, skab
from edgegen.models.data.windows import fingerprint, normal_runs, time_split, windows

WINDOW = 16  # samples: 16 s of SKAB at 1 Hz
HOP_TRAIN = 1  # overlapping windows for learning; nodes send non-overlapping ones (hop = window)


@dataclass(frozen=True)
class Experiment:
    """One labelled experiment: its training rows (0-399, the gateway's calibration; normal but in other/2) and
    its held-back test rows."""

    name: str
    normal: npt.NDArray[np.float64]  # raw rows (samples, channels)
    test: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int8]  # per test row


@dataclass(frozen=True)
class Task:
    dataset: str
    channels: tuple[str, ...]
    sample_rate_hz: float
    window: int
    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    scales: npt.NDArray[np.float64]  # physical units per int16 count, per channel
    train: npt.NDArray[np.float32]  # normalised windows
    validation: npt.NDArray[np.float32]
    experiments: tuple[Experiment, ...]
    fingerprint: str

    def normalise(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        return ((values - self.mean) / self.std).astype(np.float32)

    def as_counts(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
        """What a node sends: physical values as int16 counts at the feature scales."""
        return np.clip(np.round(values / self.scales), -32768, 32767).astype(np.int16)


def skab_task(root: Path, limit_experiments: int | None = None, train_fraction: float = 0.8) -> Task:
    experiments = skab.experiments(root)[:limit_experiments]
    free = skab.anomaly_free(root)
    parts: list[Series] = [free] + [e.slice(0, skab.SKAB_TRAIN_ROWS) for e in experiments]
    splits = [time_split(p, train_fraction) for p in parts]
    train_parts = [run for t, _ in splits for run in normal_runs(t, WINDOW)]
    validation_parts = [run for _, v in splits for run in normal_runs(v, WINDOW)]
    train_rows = np.concatenate([t.values for t in train_parts])
    mean = train_rows.mean(axis=0)
    std = train_rows.std(axis=0)
    std[std == 0] = 1.0
    peak = np.abs(np.concatenate([p.values for p in parts])).max(axis=0)
    scales = np.maximum(peak * 2.0, 1e-6) / 32767  # room for twice the training range before clipping

    def norm(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        normalised: npt.NDArray[np.float32] = ((values - mean) / std).astype(np.float32)
        return normalised

    def stack(series: list[Series]) -> npt.NDArray[np.float32]:
        return np.concatenate([windows(norm(s.values), WINDOW, HOP_TRAIN) for s in series]).astype(np.float32)

    held = tuple(
        Experiment(
            e.name,
            e.values[: skab.SKAB_TRAIN_ROWS],
            e.values[skab.SKAB_TRAIN_ROWS :],
            e.anomaly[skab.SKAB_TRAIN_ROWS :] if e.anomaly is not None else np.zeros(0, np.int8),
        )
        for e in experiments
    )
    return Task(
        dataset="skab",
        channels=skab.CHANNELS,
        sample_rate_hz=1.0,
        window=WINDOW,
        mean=mean,
        std=std,
        scales=scales,
        train=stack(train_parts),
        validation=stack(validation_parts),
        experiments=held,
        fingerprint=fingerprint([free, *experiments]),
    )
