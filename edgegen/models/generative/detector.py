"""Anomaly scores, flags and anomaly forecasts from the generative model, the same in batch and in streaming.

Per step t (scaled values z_t):
- surprise: the one-step forecast's standardized residual, whitened with its second moment on held-back data,
  as ``channels * log1p(|w e|² / channels)`` (a briefly over-confident model: large, not unbounded);
- novelty: the state against the model's start distribution (empty context), whitened the same way: how far
  the state is from normal operation, which keeps flagging a sustained fault after the one-step forecast has
  caught up with it; "max" takes the largest whitened square (times channels), "sum" all of them;
- raw r_t = (surprise_weight * surprise + novelty_weight * novelty) / channels, smoothed by an EWMA into s_t;
- the flag is s_t above the level a peaks-over-threshold tail, fitted on held-back normal scores, puts at the
  configured false-alarm rate; the score in [0, 1] is 1 - that tail's survival probability.
- intervals: Gaussian half-widths times split-conformal factors from held-back data, times an adaptive
  conformal multiplier (Gibbs & Candes 2021) that widens or narrows them as one-step misses come in, so
  coverage holds when the process drifts away from its calibration stretch;
- anomaly forecast: P(a flag within the next H steps), from fixed correlated draws around the H-step forecast
  pushed through the same score recursion.

Every quantity at step t depends only on rows <= t and fixed parameters, and every array operation works row
by row, so ``score`` on a whole series and ``Stream.push`` row by row give identical floats.

Non-finite numbers: a weight of 0 leaves its term out (an infinite term times 0 must not make NaN). Every
output (raw, smoothed, score, p_anomaly, mean, lower, upper) is finite, or the call raises ``NonFiniteError``
and returns nothing: an input row that is not finite or that scales beyond float32 (the network's precision), a
forecast the network could not make finite, an overflow. A ``Stream`` that raised keeps the state it had before
the call, so later rows score as if the refused ones never came. BLAS floating-point flags are not errors
(edgegen.models.blas); results are checked instead.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt

from edgegen.models.blas import matmul
from edgegen.models.errors import EvaluationError, NonFiniteError
from edgegen.models.generative import calibration
from edgegen.models.generative.model import GenModel, one_step_residuals, train
from edgegen.models.generative.runtime import Forecast
from edgegen.models.generative.spec import GenSpec, Scaler
from edgegen.models.generative.windows import Batch, contexts, one_hot

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DetectorParams:
    """One parameter set for every file (``edgegen detect``); the evaluations change only ``alpha``."""

    alpha: float = 0.01  # configured false-alarm rate of the flag on normal data
    smoothing: float = 0.1  # EWMA weight of the newest raw score
    calibration_share: float = 0.5  # of the training part, held back for calibration
    context: int = 16
    horizon: int = 10
    width: int = 64
    steps: int = 600  # training steps
    draws: int = 32  # anomaly-forecast draws
    shrink: float = 0.1  # whitening covariance shrunk toward its diagonal by this share
    surprise_weight: float = 0.3  # weight of the one-step surprise beside the state novelty
    novelty_weight: float = 1.0  # weight of the state novelty (0: surprise only, for detectors calibrated on one
    # short stretch, which cannot tell slow normal drift from a fault's shift; see gateway analytics)
    combine: str = "max"  # novelty over channels: "max" of whitened squares (times channels) or "sum"
    adapt: float = 0.05  # adaptive conformal step: how fast interval widths follow observed misses
    seed: int = 0


@dataclass(frozen=True)
class Scores:
    raw: F64  # r_t
    smoothed: F64  # s_t
    score: F64  # in [0, 1]
    flag: npt.NDArray[np.int8]
    p_anomaly: F64  # P(flag within the next horizon steps)
    mean: F64  # (n, horizon, channels) forecast of steps t+1..t+H, data units
    lower: F64  # (n, levels, horizon, channels)
    upper: F64


@dataclass
class Detector:
    model: GenModel
    params: DetectorParams
    step_whiten: F64
    start_whiten: F64
    start_mean: F64  # (channels,) scaled
    start_scale: F64
    tail: calibration.Tail = field(init=False)
    draws: F64 = field(init=False)  # (draws, channels): fixed correlated standard normal draws

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.params.seed + 17)
        eps = rng.standard_normal((self.params.draws, len(self.model.spec.channels)))
        factor = np.asarray(self.model.noise.get("normal", np.eye(eps.shape[1])), dtype=np.float64)
        self.draws = matmul(eps, factor.T)

    @staticmethod
    def fit(
        values: F64, params: DetectorParams = DetectorParams(), channels: tuple[str, ...] | None = None
    ) -> Detector:
        """Learn from ``values`` (the training part, assumed normal): train on the first part, calibrate on the
        rest."""
        n, c = values.shape
        cut = round(n * (1 - params.calibration_share))
        if cut < params.horizon + 8 or n - cut < 10:
            raise EvaluationError(f"the training part needs more rows: {n} (split {cut} + {n - cut})")
        spec = GenSpec(
            channels=channels or tuple(f"c{i}" for i in range(c)),
            context=params.context,
            horizon=params.horizon,
            width=params.width,
        )
        labels = np.zeros(n, dtype=np.int64)
        scaler = Scaler.fit(values)
        model = train(
            spec,
            [(values[:cut], labels[:cut])],
            calibrate_on=[(values[cut:], labels[cut:])],
            scaler=scaler,
            steps=params.steps,
            seed=params.seed,
        )
        return Detector.calibrate(model, params, [(scaler.forward(values), slice(cut, n))])

    @staticmethod
    def calibrate(model: GenModel, params: DetectorParams, held: list[tuple[F64, slice]]) -> Detector:
        """Whitening and the score tail from held-back normal stretches: each (scaled series, the rows of it to
        calibrate on; the rows before are context)."""
        start = model.start()
        start_mean = start.mean[0, 0].astype(np.float64)
        start_scale = start.scale[0, 0].astype(np.float64)
        step_res = np.concatenate([one_step_residuals(model, z)[rows] for z, rows in held])
        novelty = np.concatenate([(z[rows] - start_mean) / start_scale for z, rows in held])
        det = Detector(
            model,
            params,
            calibration.whitener(step_res, params.shrink),
            calibration.whitener(novelty, params.shrink),
            start_mean,
            start_scale,
        )
        smoothed = []
        for z, rows in held:
            f = model.forecast(z, np.arange(len(z), dtype=np.int64))
            smoothed.append(smooth(det.raw(z, f.mean[:, 0, :], f.scale[:, 0, :]), params.smoothing)[rows])
        det.tail = calibration.Tail.fit(np.concatenate(smoothed), params.alpha)
        return det

    def rescaled(self, scaler: Scaler) -> Detector:
        """The same detector for a stream with its own reference scaling (a shared model, per-file scaling)."""
        other = copy.copy(self)
        other.model = dataclasses.replace(self.model, scaler=scaler)
        return other

    # -- the per-row pieces, shared by batch and streaming -------------------------------------------------

    def raw(self, z: F64, mean: npt.NDArray[np.float32], scale: npt.NDArray[np.float32]) -> F64:
        """r_t from each row and the one-step forecast made for it. A term whose weight is 0 is not computed:
        it is absent, whatever it would have been (0 x inf is NaN)."""
        n, c = z.shape
        total = np.zeros(n)
        if self.params.surprise_weight:
            surprise = _whiten((z - mean.astype(np.float64)) / scale.astype(np.float64), self.step_whiten)
            # log1p: a model briefly overconfident out of sample gives a large surprise, not an unbounded one
            total += self.params.surprise_weight * (c * np.log1p(_sum_squares(surprise) / c))
        if self.params.novelty_weight:
            novelty = _whiten((z - self.start_mean) / self.start_scale, self.start_whiten)
            total += self.params.novelty_weight * self._novelty(novelty)
        return np.asarray(total / c, dtype=np.float64)

    def _novelty(self, white: F64) -> F64:
        if self.params.combine == "max":
            return np.asarray(np.max(white * white, axis=-1) * white.shape[-1], dtype=np.float64)
        return _sum_squares(white)

    def outputs(
        self, smoothed: F64, mean: npt.NDArray[np.float32], scale: npt.NDArray[np.float32], widen: F64
    ) -> tuple[F64, ...]:
        """Per row: score, P(anomaly within H), forecast mean and interval bounds in data units."""
        score = 1.0 - self.tail.survival(smoothed)
        mu = mean.astype(np.float64)
        sd = scale.astype(np.float64)
        p = self._p_anomaly(smoothed, mu, sd)
        factors = np.asarray(self.model.interval_factors)  # (levels, horizon)
        half = np.asarray([stats_z(level) for level in calibration.LEVELS])[:, None] * factors
        width = sd[:, None, :, :] * half[None, :, :, None] * widen[:, :, None, None]
        centre = self.model.scaler.inverse(mu)
        unit = np.asarray(self.model.scaler.scale)
        lower = centre[:, None] - width * unit
        upper = centre[:, None] + width * unit
        return score, p, centre, lower, upper

    def _p_anomaly(self, smoothed: F64, mu: F64, sd: F64) -> F64:
        """Rows in chunks of 256: each row's draws fit in cache, and no row depends on its neighbours."""
        out = np.empty(len(smoothed))
        for start in range(0, len(smoothed), 256):
            rows = slice(start, start + 256)
            out[rows] = self._p_anomaly_rows(smoothed[rows], mu[rows], sd[rows])
        return out

    def _p_anomaly_rows(self, smoothed: F64, mu: F64, sd: F64) -> F64:
        c = mu.shape[2]
        a = self.params.smoothing
        x = mu[:, None, :, :] + sd[:, None, :, :] * self.draws[None, :, None, :]  # (n, draws, H, C)
        typical_surprise = c * math.log(2.0)  # the tamed surprise of a step that is exactly as expected
        r = np.full(x.shape[:-1], self.params.surprise_weight * typical_surprise)
        if self.params.novelty_weight:  # 0: absent, not 0 x the novelty (NaN where that is infinite)
            novelty = _whiten((x - self.start_mean) / self.start_scale, self.start_whiten)
            r = self.params.novelty_weight * self._novelty(novelty) + r
        r = r / c
        s = np.repeat(smoothed[:, None], x.shape[1], axis=1)
        hit = np.zeros(s.shape, dtype=bool)
        for h in range(x.shape[2]):
            s = (1 - a) * s + a * r[:, :, h]
            hit |= s > self.tail.level
        return np.asarray(hit.mean(axis=1), dtype=np.float64)

    def adapt(self, log_widen: F64, abs_z: F64) -> F64:
        """One adaptive-conformal step per level: the share of channels the last one-step interval missed,
        against the share it should miss."""
        out = np.empty_like(log_widen)
        for j, level in enumerate(calibration.LEVELS):
            half = stats_z(level) * self.model.interval_factors[j][0] * math.exp(log_widen[j])
            miss = float(np.count_nonzero(abs_z > half)) / len(abs_z)
            out[j] = log_widen[j] + self.params.adapt * (miss - (1.0 - level))
        return out

    def _scaled(self, values: F64) -> F64:
        """The rows scaled for the network; NonFiniteError for a value not finite or scaled beyond float32."""
        rows = np.asarray(values, dtype=np.float64).reshape(-1, len(self.model.spec.channels))
        z = self.model.scaler.forward(rows)
        bad = ~(np.abs(z) <= F32_MAX)  # NaN compares false
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            value = float(rows[row, col])
            what = "is not finite" if not math.isfinite(value) else "scales beyond float32"
            raise NonFiniteError(f"row {row}, channel {self.model.spec.channels[col]}: {value!r} {what}")
        return z

    # -- batch ---------------------------------------------------------------------------------------------

    def score(self, values: F64) -> Scores:
        """Score a whole series (its first row is the first the detector sees)."""
        z = self._scaled(values)
        n = len(z)
        f = _finite_forecast(self.model.forecast(z, np.arange(n + 1, dtype=np.int64)), -1)
        raw = self.raw(z, f.mean[:n, 0, :], f.scale[:n, 0, :])
        smoothed = smooth(raw, self.params.smoothing)
        abs_z = np.abs(z - f.mean[:n, 0, :].astype(np.float64)) / f.scale[:n, 0, :].astype(np.float64)
        widen = np.empty((n, len(calibration.LEVELS)))
        state = np.zeros(len(calibration.LEVELS))
        for t in range(n):
            state = self.adapt(state, abs_z[t])
            widen[t] = np.exp(state)
        score, p, centre, lower, upper = self.outputs(smoothed, f.mean[1:], f.scale[1:], widen)
        flag = (smoothed > self.tail.level).astype(np.int8)
        return _finite(Scores(raw, smoothed, score, flag, p, centre, lower, upper))

    def stream(self) -> Stream:
        return Stream(self)


class Stream:
    """Point-by-point scoring: keeps the last ``context`` rows, the pending one-step forecast and the EWMA.

    ``push_many`` takes any number of new rows at once: their forecasts come from one network call (a forecast
    depends only on observed rows), the EWMA and interval recursions then run row by row — so feeding a series in
    chunks of any size gives the same floats as ``Detector.score`` on the whole. ``batch`` and ``consume`` split
    that call, so a caller can stack many streams' rows into one network call.
    """

    def __init__(self, detector: Detector) -> None:
        self.d = detector
        spec = detector.model.spec
        self._history = np.zeros((0, len(spec.channels)), dtype=np.float64)
        f = detector.model.start()
        self._start = f.mean[:, 0, :], f.scale[:, 0, :]
        self._mean, self._scale = self._start
        self._smoothed: float | None = None
        self._log_widen = np.zeros(len(calibration.LEVELS))

    def restart(self) -> None:
        """Forget the context (after a long gap): the next row is forecast as a first step. The smoothed score
        and interval widths carry on."""
        self._history = self._history[:0]
        self._mean, self._scale = self._start

    def batch(self, rows: F64) -> tuple[F64, Batch]:
        """The scaled rows and the network inputs for the forecast made after each of them."""
        d = self.d
        spec = d.model.spec
        z = d._scaled(rows)
        series = np.concatenate([self._history, z])
        ends = np.arange(len(self._history) + 1, len(series) + 1, dtype=np.int64)
        ctx, mask = contexts(spec, series, ends)
        return z, Batch(ctx, mask, one_hot(np.zeros(len(ends), dtype=np.int64), len(spec.classes)))

    def consume(self, z: F64, f: Forecast) -> Scores:
        """Scores for the rows ``batch`` prepared, given the network's forecasts for that batch. The stream's
        state moves on only once every output is known to be finite (else NonFiniteError, state unchanged)."""
        d = self.d
        n = len(z)
        _finite_forecast(f, 0)
        mean1 = np.concatenate([self._mean, f.mean[:-1, 0, :]])  # the one-step forecast each row is judged by
        scale1 = np.concatenate([self._scale, f.scale[:-1, 0, :]])
        raw = d.raw(z, mean1, scale1)
        smoothed = np.empty(n)
        value = self._smoothed
        for t in range(n):
            value = float(raw[t]) if value is None else _ewma_step(value, float(raw[t]), d.params.smoothing)
            smoothed[t] = value
        abs_z = np.abs(z - mean1.astype(np.float64)) / scale1.astype(np.float64)
        widen = np.empty((n, len(calibration.LEVELS)))
        state = self._log_widen
        for t in range(n):
            state = d.adapt(state, abs_z[t])
            widen[t] = np.exp(state)
        score, p, centre, lower, upper = d.outputs(smoothed, f.mean, f.scale, widen)
        flag = (smoothed > d.tail.level).astype(np.int8)
        scores = _finite(Scores(raw, smoothed, score, flag, p, centre, lower, upper))
        self._smoothed = value
        self._log_widen = state
        self._history = np.concatenate([self._history, z])[-d.model.spec.context :]
        self._mean, self._scale = f.mean[-1:, 0, :], f.scale[-1:, 0, :]
        return scores

    def push_many(self, rows: F64) -> Scores:
        z, batch = self.batch(rows)
        return self.consume(z, self.d.model.network(batch))

    def push(self, row: F64) -> Scores:
        return self.push_many(np.asarray(row, dtype=np.float64).reshape(1, -1))


BLOCK = 8
F32_MAX = float(np.finfo(np.float32).max)
OUTPUTS = ("raw", "smoothed", "score", "p_anomaly", "mean", "lower", "upper")


def _finite_forecast(f: Forecast, first: int) -> Forecast:
    """The network's forecasts, the first made after row ``first`` of the call (-1: before any), or
    NonFiniteError before any arithmetic on them (inf - inf would warn)."""
    for name in ("mean", "scale"):
        values = getattr(f, name)
        bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if bad.any():
            row = first + int(np.argmax(bad))
            raise NonFiniteError(f"the network's forecast {name} after row {row} is not finite")
    return f


def _finite(scores: Scores) -> Scores:
    """``scores``, or NonFiniteError naming the first output and row that is not finite."""
    for name in OUTPUTS:
        values = getattr(scores, name)
        bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if bad.any():
            raise NonFiniteError(f"{name} is not finite at row {int(np.argmax(bad))}")
    return scores


def _blocked_matmul(x: F64, m: F64) -> F64:
    """``x @ m`` over the last axis in blocks of ``BLOCK`` rows: each block goes through the same BLAS call
    whatever the number of rows, so a row's result does not depend on how many rows came with it."""
    lead = x.shape[:-1]
    rows = x.reshape(-1, x.shape[-1])
    pad = (-len(rows)) % BLOCK
    if pad:
        rows = np.concatenate([rows, np.zeros((pad, rows.shape[1]))])
    out = matmul(rows.reshape(-1, BLOCK, rows.shape[1]), m).reshape(-1, m.shape[1])
    return np.asarray(out[: len(out) - pad] if pad else out, dtype=np.float64).reshape(*lead, m.shape[1])


def _whiten(e: F64, w: F64) -> F64:
    return _blocked_matmul(e, np.ascontiguousarray(w.T))


def _sum_squares(x: F64) -> F64:
    return _blocked_matmul(x * x, np.ones((x.shape[-1], 1)))[..., 0]


def _ewma_step(previous: float, raw: float, a: float) -> float:
    return (1 - a) * previous + a * raw


def smooth(raw: F64, a: float) -> F64:
    out = np.empty_like(raw)
    state = float(raw[0]) if len(raw) else 0.0
    for i, r in enumerate(raw.tolist()):
        state = r if i == 0 else _ewma_step(state, r, a)
        out[i] = state
    return out


@cache
def stats_z(level: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + level / 2))
