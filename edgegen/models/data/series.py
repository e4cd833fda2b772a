"""A multivariate time series with optional labels: what every loader returns and every trainer takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Series:
    name: str
    timestamps_us: npt.NDArray[np.int64]  # strictly increasing
    values: npt.NDArray[np.float64]  # (samples, channels)
    channels: tuple[str, ...]
    anomaly: npt.NDArray[np.int8] | None = None  # 0/1 per sample, where the data set labels outliers
    changepoint: npt.NDArray[np.int8] | None = None
    meta: dict[str, str] = field(default_factory=dict)  # e.g. {"fault": "IDV(4)"}

    def __post_init__(self) -> None:
        n = len(self.timestamps_us)
        if self.values.shape != (n, len(self.channels)):
            raise ValueError(
                f"{self.name}: values {self.values.shape} for {n} samples x {len(self.channels)} channels"
            )
        if n > 1 and not bool(np.all(np.diff(self.timestamps_us) > 0)):
            raise ValueError(f"{self.name}: timestamps must increase strictly")
        for labels in (self.anomaly, self.changepoint):
            if labels is not None and labels.shape != (n,):
                raise ValueError(f"{self.name}: labels must have one value per sample")

    def __len__(self) -> int:
        return len(self.timestamps_us)

    def slice(self, start: int, stop: int) -> Series:
        return Series(
            self.name,
            self.timestamps_us[start:stop],
            self.values[start:stop],
            self.channels,
            None if self.anomaly is None else self.anomaly[start:stop],
            None if self.changepoint is None else self.changepoint[start:stop],
            dict(self.meta),
        )
