"""Tennessee Eastman process (Braatz data set): 52 variables every 3 minutes, a normal run and 21 faults
(../shared/data/tep-braatz/PROVENANCE.md).

Training files dNN.dat hold 480 samples, all faulty (d00.dat: 500 normal samples, stored transposed); test files
dNN_te.dat hold 960 samples with the fault introduced after sample 160 (d00_te.dat: all normal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgegen.models.data.series import Series
from edgegen.models.errors import DataError

CHANNELS = tuple([f"XMEAS({i})" for i in range(1, 42)] + [f"XMV({i})" for i in range(1, 12)])
PERIOD_US = 180_000_000
FAULT_START_TEST = 160


def _load(path: Path) -> npt.NDArray[np.float64]:
    try:
        data = np.loadtxt(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: {exc}") from exc
    if data.shape[0] == 52 and data.shape[1] != 52:
        data = data.T  # d00.dat is stored transposed
    if data.ndim != 2 or data.shape[1] != 52:
        raise DataError(f"{path}: expected 52 columns, got shape {data.shape}")
    return data


def run(root: Path, fault: int, test: bool) -> Series:
    """Fault 0 is normal operation. Labels mark the faulty samples."""
    if not 0 <= fault <= 21:
        raise DataError(f"fault must be 0..21, got {fault}")
    path = root / f"d{fault:02d}{'_te' if test else ''}.dat"
    values = _load(path)
    n = len(values)
    labels = np.zeros(n, dtype=np.int8)
    if fault:
        labels[FAULT_START_TEST if test else 0 :] = 1
    timestamps = np.arange(n, dtype=np.int64) * PERIOD_US
    meta = {"fault": f"IDV({fault})" if fault else "normal", "split": "test" if test else "train"}
    return Series(path.stem, timestamps, values, CHANNELS, labels, None, meta)
