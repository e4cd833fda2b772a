"""Calibration from held-back data: conformal interval factors, residual correlation (for whitening scores and
for correlated noise in generation), and a peaks-over-threshold tail for anomaly scores."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from edgegen.models.blas import matmul

F64 = npt.NDArray[np.float64]
LEVELS = (0.8, 0.95)


def conformal_factors(abs_z: F64, levels: tuple[float, ...] = LEVELS) -> list[list[float]]:
    """``abs_z``: |y - mean| / scale, shape (n, horizon, channels). Per level and horizon step, the factor on
    the Gaussian half-width that makes the interval cover ``level`` of the held-back points (split conformal,
    with the finite-sample rank ceil((n + 1) level))."""
    n = abs_z.shape[0] * abs_z.shape[2]
    out = []
    for level in levels:
        z = float(stats.norm.ppf(0.5 + level / 2))
        rank = min(n, math.ceil((n + 1) * level))
        row = []
        for h in range(abs_z.shape[1]):
            ordered = np.sort(abs_z[:, h, :].ravel())
            row.append(float(ordered[rank - 1]) / z)
        out.append(row)
    return out


def whitener(residuals: F64, shrink: float = 0.1) -> F64:
    """Inverse Cholesky factor of the residuals' (shrunk) second-moment matrix about zero: ``w @ e`` has
    identity second moment on held-back data, so a sum of squares is a Mahalanobis distance that knows which
    channels move together, how far the model's own scale was off out of sample, and how far a channel
    drifted between training and calibration (a drifting channel counts less)."""
    c = residuals.shape[1]
    if len(residuals) < c + 2:
        return np.eye(c)
    moment = matmul(residuals.T, residuals) / len(residuals)
    diag = np.diag(np.diag(moment))
    moment = (1 - shrink) * moment + shrink * diag + 1e-9 * np.eye(c)
    return np.asarray(np.linalg.inv(np.linalg.cholesky(moment)), dtype=np.float64)


def noise_factor(residuals: F64, shrink: float = 0.1) -> F64:
    """Cholesky factor of the shrunk correlation matrix (correlated noise for sampling)."""
    c = residuals.shape[1]
    if len(residuals) < 3 or c == 1:
        return np.eye(c)
    corr = np.corrcoef(residuals, rowvar=False)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    corr = (1 - shrink) * corr + shrink * np.eye(c)
    return np.asarray(np.linalg.cholesky(corr), dtype=np.float64)


@dataclass(frozen=True)
class Tail:
    """The distribution of normal anomaly scores: empirical below ``threshold_u``, a generalized Pareto tail
    above it (peaks over threshold); ``level`` is the score exceeded with probability ``alpha``."""

    sorted_scores: tuple[float, ...]
    threshold_u: float
    exceed_share: float
    shape: float
    gpd_scale: float
    alpha: float
    level: float

    @staticmethod
    def fit(scores: F64, alpha: float, tail_share: float = 0.2) -> Tail:
        s = np.sort(scores[np.isfinite(scores)])
        if len(s) < 10:
            raise ValueError(f"calibration needs at least 10 scores, got {len(s)}")
        u = float(np.quantile(s, 1 - tail_share))
        excess = s[s > u] - u
        share = len(excess) / len(s)
        shape, gpd_scale = 0.0, float(np.mean(excess)) if len(excess) else 1.0
        if len(excess) >= 8:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c, _, sc = stats.genpareto.fit(excess, floc=0)
            if np.isfinite(c) and np.isfinite(sc) and sc > 0:
                shape, gpd_scale = float(min(max(c, -0.5), 0.5)), float(sc)
        ordered = tuple(float(x) for x in s)
        level = _quantile(ordered, u, share, shape, max(gpd_scale, 1e-12), alpha)
        return Tail(ordered, u, share, shape, max(gpd_scale, 1e-12), alpha, level)

    def quantile(self, exceed: float) -> float:
        """The score exceeded with probability ``exceed``."""
        return _quantile(
            self.sorted_scores, self.threshold_u, self.exceed_share, self.shape, self.gpd_scale, exceed
        )

    def survival(self, scores: F64) -> F64:
        """P(normal score > s): the calibrated tail probability of each score."""
        ordered = np.asarray(self.sorted_scores)
        empirical = 1.0 - np.searchsorted(ordered, scores, side="right") / len(ordered)
        above = scores > self.threshold_u
        excess = np.where(above, scores - self.threshold_u, 0.0) / self.gpd_scale
        tail = self.exceed_share * _gpd_survival(excess, self.shape)
        return np.where(above, tail, np.maximum(empirical, self.exceed_share))


def _gpd_survival(x: F64, shape: float) -> F64:
    """Generalized Pareto survival of standardized excesses, in closed form (scipy's ``genpareto.sf`` costs
    ~0.7 ms per call, most of a streamed step): (1 + shape x)^(-1/shape), exp(-x) at shape 0."""
    if shape == 0.0:
        return np.asarray(np.exp(-x), dtype=np.float64)
    base = np.maximum(1.0 + shape * x, 0.0)  # shape < 0: zero beyond the distribution's end
    with np.errstate(divide="ignore"):
        return np.asarray(np.where(base > 0, base ** (-1.0 / shape), 0.0), dtype=np.float64)


def _quantile(
    ordered: tuple[float, ...], u: float, share: float, shape: float, scale: float, exceed: float
) -> float:
    if exceed >= share:
        return float(np.quantile(np.asarray(ordered), 1 - exceed))
    return u + float(stats.genpareto.isf(exceed / share, shape, loc=0, scale=scale))
