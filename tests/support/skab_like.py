"""A small data directory in SKAB's layout (../shared/data/skab), so training and the report run without it.

Eight channels of slow sinusoids plus noise at 1 Hz; each of the 34 experiments has 400 normal rows and a test
part whose second half is an anomaly: one channel's level shifts, as when a valve sticks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edgegen.models.data import skab

GROUP_SIZES = {"valve1": 16, "valve2": 4, "other": 14}  # SKAB's own split: 34 experiments
BASE = np.array([0.03, 0.04, 1.3, 0.1, 79.0, 26.0, 230.0, 32.0])
SWING = np.array([0.005, 0.005, 0.3, 0.05, 1.0, 0.5, 5.0, 2.0])


def _frame(
    rng: np.random.Generator, rows: int, start: str, anomaly_from: int | None, channel: int
) -> pd.DataFrame:
    t = np.arange(rows)
    phase = rng.uniform(0, 2 * np.pi, size=8)
    values = BASE + SWING * np.sin(2 * np.pi * t[:, None] / 60.0 + phase) + rng.normal(0, 0.1, (rows, 8)) * SWING
    frame = pd.DataFrame(values, columns=list(skab.CHANNELS))
    frame.insert(0, "datetime", pd.date_range(start, periods=rows, freq="1s").strftime("%Y-%m-%d %H:%M:%S"))
    if anomaly_from is not None:
        labels = (t >= anomaly_from).astype(float)
        frame[skab.CHANNELS[channel]] += labels * 4 * SWING[channel]
        frame["anomaly"] = labels
        frame["changepoint"] = (t == anomaly_from).astype(float)
    return frame


def write(root: Path, test_rows: int = 96, free_rows: int = 1200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "anomaly-free").mkdir(parents=True)
    _frame(rng, free_rows, "2020-02-08 10:00:00", None, 0).to_csv(
        root / "anomaly-free" / "anomaly-free.csv", sep=";", index=False
    )
    k = 0
    for group, count in GROUP_SIZES.items():
        (root / group).mkdir()
        for i in range(count):
            rows = skab.SKAB_TRAIN_ROWS + test_rows
            frame = _frame(rng, rows, f"2020-03-{1 + k % 28:02d} 10:00:00", rows - test_rows // 2, k % 8)
            frame.to_csv(root / group / f"{i}.csv", sep=";", index=False)
            k += 1
    return root
