"""Training sets for the shipped generative models: per data set, the segments (values, class per row), the
class names, the sampling period, and the model's shape."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgegen.models.data import skab, tep
from edgegen.models.errors import DataError
from edgegen.models.generative.spec import NORMAL

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainingSet:
    name: str
    channels: tuple[str, ...]
    classes: tuple[str, ...]
    segments: list[tuple[F64, I64]]
    period_us: int
    context: int
    horizon: int
    width: int
    steps: int
    log_channels: tuple[int, ...] = ()  # positive, heavy-tailed channels modelled in log space

    def fingerprint(self) -> str:
        """SHA-256 over name, channels, classes and each segment's length, values and labels: the data's
        identity."""
        h = hashlib.sha256()
        h.update("\n".join((self.name, ",".join(self.channels), ",".join(self.classes))).encode())
        for values, labels in self.segments:
            h.update(len(values).to_bytes(8, "little"))  # where one segment ends and the next begins
            h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
            h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        return h.hexdigest()


def skab_set(root: Path) -> TrainingSet:
    """The anomaly-free run and all 34 experiments; an anomalous row's class is its experiment group (valve1:
    outlet valve closures, valve2: inlet valve closures, other: the remaining failure experiments)."""
    classes = (NORMAL, *skab.GROUPS)
    free = skab.anomaly_free(root)
    segments = [(free.values, np.zeros(len(free), dtype=np.int64))]
    for exp in skab.experiments(root):
        group = classes.index(exp.name.split("/")[0])
        labels = np.where(exp.anomaly == 1, group, 0).astype(np.int64) if exp.anomaly is not None else None
        if labels is None:
            raise DataError(f"{exp.name}: unlabelled")
        segments.append((exp.values, labels))
    return TrainingSet("skab", skab.CHANNELS, classes, segments, 1_000_000, 16, 10, 128, 3000)


def tep_set(root: Path) -> TrainingSet:
    """The 22 training runs of the Braatz set: d00 normal, dNN all rows of fault IDV(NN)."""
    classes = (NORMAL, *[f"IDV({k})" for k in range(1, 22)])
    segments = [
        (run.values, np.full(len(run), k, dtype=np.int64)) for k in range(22) for run in [tep.run(root, k, False)]
    ]
    return TrainingSet("tep", tep.CHANNELS, classes, segments, tep.PERIOD_US, 8, 10, 128, 3000)


def stock_set(root: Path) -> TrainingSet:
    """The TimeGAN Stocks series in upstream's orientation, min-max scaled as the protocol does."""
    from edgegen.models.eval.timegan_metrics import stock_series

    scaled, _ = stock_series(root / "stock_data.csv")
    values = scaled.astype(np.float64)
    channels = ("Open", "High", "Low", "Close", "Adj_Close", "Volume")
    return TrainingSet(
        "stock",
        channels,
        (NORMAL,),
        [(values, np.zeros(len(values), dtype=np.int64))],
        86_400_000_000,
        8,
        10,
        128,
        3000,
        log_channels=(5,),  # traded volume: positive, skewness 3
    )


LOADERS = {"skab": skab_set, "tep": tep_set, "stock": stock_set}


def load(name: str, root: Path) -> TrainingSet:
    try:
        loader = LOADERS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}: choose one of {sorted(LOADERS)}") from None
    return loader(root)
