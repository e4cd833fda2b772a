"""Reliability tables for probability forecasts: predicted vs observed frequency per bin, and the Brier score."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Reliability:
    bins: list[tuple[float, float, int, float, float]]  # (low, high, count, mean predicted, observed frequency)
    brier: float
    base_rate: float
    brier_climatology: float  # always predicting the base rate

    @property
    def skill(self) -> float:
        """Brier skill score against the base rate (1 perfect, 0 no better than climatology)."""
        return 1.0 - self.brier / self.brier_climatology if self.brier_climatology > 0 else 0.0


def reliability(p: npt.NDArray[np.float64], y: npt.NDArray[np.int8]) -> Reliability:
    y = y.astype(np.float64)
    bins = []
    for i, (low, high) in enumerate(itertools.pairwise(EDGES)):
        last = i == len(EDGES) - 2
        sel = (p >= low) & ((p <= high) if last else (p < high))
        count = int(sel.sum())
        bins.append(
            (low, high, count, float(p[sel].mean()) if count else 0.0, float(y[sel].mean()) if count else 0.0)
        )
    base = float(y.mean()) if len(y) else 0.0
    return Reliability(bins, float(np.mean((p - y) ** 2)), base, base * (1 - base))


def platt_fit(p: npt.NDArray[np.float64], y: npt.NDArray[np.int8]) -> tuple[float, float]:
    """Logistic recalibration P' = sigmoid(a * logit(p) + b), fitted by maximum likelihood."""
    from scipy.optimize import minimize

    x = _logit(p)
    t = y.astype(np.float64)

    def nll(w: npt.NDArray[np.float64]) -> float:
        z = w[0] * x + w[1]
        return float(np.mean(np.logaddexp(0.0, z) - t * z))

    res = minimize(nll, np.array([1.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    return float(res.x[0]), float(res.x[1])


def platt_apply(p: npt.NDArray[np.float64], ab: tuple[float, float]) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-(ab[0] * _logit(p) + ab[1]))), dtype=np.float64)


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, 1e-3, 1 - 1e-3)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)
