"""`edgegen eval skab`: the SKAB leaderboard protocol with the generative detector.

Per file: ``Detector.fit`` on rows 0-399 (the leaderboard's training part), then the whole file is streamed
through it and rows 400.. are scored: point-wise outliers pooled over the 34 files, NAB changepoints from the
flags' edges, the forecast intervals' coverage on the test parts' normal rows, and the reliability of
P(anomaly within the next H steps) against the labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.data import skab
from edgegen.models.data.series import Series
from edgegen.models.eval import skab_metrics
from edgegen.models.eval.calibration_tables import Reliability, platt_apply, platt_fit, reliability
from edgegen.models.generative.calibration import LEVELS
from edgegen.models.generative.detector import Detector, DetectorParams
from edgegen.models.generative.model import train
from edgegen.models.generative.spec import GenSpec, Scaler

CHUNK = 1150  # a typical experiment's length: 400 reference rows, then the scored part
Progress = Callable[[str, int, int], None]

# SKAB's published leaderboards, README of github.com/waico/SKAB at b2c0d46 (F1, FAR %, MAR %, NAB standard,
# low FP, low FN)
PUBLISHED: dict[str, tuple[float, float, float, float | None, float | None, float | None]] = {
    "Conv-AE": (0.78, 13.55, 28.02, 23.61, 21.54, 27.55),
    "MSET": (0.78, 39.73, 14.13, 13.84, 10.22, 17.37),
    "T-squared+Q (PCA)": (0.76, 26.62, 24.92, 25.35, 14.51, 31.33),
    "LSTM-AE": (0.74, 29.96, 25.92, 23.51, 20.11, 25.91),
    "LSTM-VAE": (0.56, 9.13, 55.03, None, None, None),
    "MSCRED": (0.36, 49.94, 69.88, 32.42, 16.53, 40.28),
    "Isolation forest": (0.29, 2.56, 82.89, 26.16, 19.50, 30.82),
}


@dataclass
class SkabResult:
    outliers: skab_metrics.OutlierScores
    changepoints: skab_metrics.NabScores
    coverage: dict[str, float]  # nominal level -> share of test-part normal points inside the interval
    anomaly_forecast: Reliability  # raw P against the labels
    anomaly_forecast_own: Reliability  # raw P against the detector's own flags in the next H steps
    anomaly_forecast_recalibrated: Reliability  # Platt-recalibrated, fitted on the other experiment groups
    train_s_per_file: float
    score_steps_per_s: float
    files: int
    params: dict[str, Any] = field(default_factory=dict)
    shared: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def shared_detector(data_dir: Path, experiments: list[Series], params: DetectorParams) -> Detector:
    """One network for all files, still inside the protocol: it learns from every file's rows 0-399 (each
    scaled by its own statistics) and the first half of the anomaly-free run. Its whitening and score tail come
    from normal data replayed as the protocol does - a reference, then what follows it: the anomaly-free run's
    second half (400 reference rows, then the next 750) and every file's training part (rows 0-199, then
    200-399). That teaches it how far each channel normally wanders from its reference (the motor temperature
    a lot, the flow rate little), which 400 rows of one file cannot show.
    """
    free = skab.anomaly_free(data_dir).values
    half = len(free) // 2
    ref = skab.SKAB_TRAIN_ROWS
    segments = []
    for part in [e.values[:ref] for e in experiments] + [free[s : s + ref] for s in range(0, half - ref + 1, ref)]:
        segments.append((Scaler.fit(part).forward(part), np.zeros(ref, dtype=np.int64)))
    held = []
    for s in range(half, len(free) - CHUNK + 1, 200):
        chunk = free[s : s + CHUNK]
        held.append((Scaler.fit(chunk[:ref]).forward(chunk), slice(ref, CHUNK)))
    for e in experiments:  # and every file's own drift inside its training part: rows 0-199 against 200-399
        part = e.values[:ref]
        held.append((Scaler.fit(part[: ref // 2]).forward(part), slice(ref // 2, ref)))
    c = len(skab.CHANNELS)
    spec = GenSpec(skab.CHANNELS, context=params.context, horizon=params.horizon, width=params.width)
    identity = Scaler(tuple([0.0] * c), tuple([1.0] * c))
    model = train(
        spec,
        segments,
        calibrate_on=[(z[rows], np.zeros(len(z[rows]), dtype=np.int64)) for z, rows in held],
        scaler=identity,
        steps=params.steps * 4,
        seed=params.seed,
    )
    return Detector.calibrate(model, params, held)


def evaluate(
    data_dir: Path,
    params: DetectorParams | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    shared: bool = False,
) -> SkabResult:
    params = params or DetectorParams()
    experiments = skab.experiments(data_dir)[:limit]
    t_shared = time.perf_counter()
    common = shared_detector(data_dir, experiments, params) if shared else None
    t_shared = time.perf_counter() - t_shared
    truths, flags, stamps, cps = [], [], [], []
    inside = {level: [0, 0] for level in LEVELS}
    p_all, y_all, own_all, groups = [], [], [], []
    train_s = score_s = 0.0
    steps = 0
    h = params.horizon
    for i, exp in enumerate(experiments):
        if progress:
            progress(exp.name, i, len(experiments))
        t0 = time.perf_counter()
        reference = exp.values[: skab.SKAB_TRAIN_ROWS]
        if common is not None:
            det = common.rescaled(Scaler.fit(reference))
        else:
            det = Detector.fit(reference, params, exp.channels)
        t1 = time.perf_counter()
        out = det.score(exp.values)
        score_s += time.perf_counter() - t1
        train_s += t1 - t0
        steps += len(exp)
        test = slice(skab.SKAB_TRAIN_ROWS, len(exp))
        assert exp.anomaly is not None and exp.changepoint is not None  # SKAB experiments are labelled
        truths.append(exp.anomaly[test])
        flags.append(out.flag[test])
        stamps.append(exp.timestamps_us[test])
        cps.append(exp.timestamps_us[test][exp.changepoint[test] == 1])
        _coverage(exp.values, exp.anomaly, out.lower, out.upper, h, inside)
        future = _any_ahead(exp.anomaly, h)
        p_all.append(out.p_anomaly[test])
        y_all.append(future[test])
        own_all.append(_any_ahead(out.flag, h)[test])
        groups.append(np.full(len(exp) - skab.SKAB_TRAIN_ROWS, exp.name.split("/")[0]))
    edges = [skab_metrics.outlier_edges(f) for f in flags]
    p, y = np.concatenate(p_all), np.concatenate(y_all)
    return SkabResult(
        outliers=skab_metrics.outlier_scores(truths, flags),
        changepoints=skab_metrics.nab_scores(cps, edges, stamps),
        coverage={f"{level:.2f}": hit / max(total, 1) for level, (hit, total) in inside.items()},
        anomaly_forecast=reliability(p, y),
        anomaly_forecast_own=reliability(p, np.concatenate(own_all)),
        anomaly_forecast_recalibrated=reliability(_cross_fitted(p, y, np.concatenate(groups)), y),
        train_s_per_file=(train_s + t_shared) / len(experiments),
        score_steps_per_s=steps / score_s,
        files=len(experiments),
        params=asdict(params),
        shared=shared,
    )


def _cross_fitted(
    p: npt.NDArray[np.float64], y: npt.NDArray[np.int8], groups: npt.NDArray[np.str_]
) -> npt.NDArray[np.float64]:
    """Each experiment group's probabilities recalibrated with a Platt fit on the other groups only."""
    out = np.empty_like(p)
    for g in np.unique(groups):
        held = groups == g
        out[held] = platt_apply(p[held], platt_fit(p[~held], y[~held])) if (~held).any() else p[held]
    return out


def _any_ahead(labels: npt.NDArray[np.int8], h: int) -> npt.NDArray[np.int8]:
    """1 where a labelled anomaly lies in the next ``h`` steps (t+1 .. t+h)."""
    padded = np.concatenate([labels.astype(np.int8), np.zeros(h, dtype=np.int8)])
    out = np.zeros(len(labels), dtype=np.int8)
    for k in range(1, h + 1):
        out |= padded[k : k + len(labels)]
    return out


def _coverage(
    values: npt.NDArray[np.float64],
    anomaly: npt.NDArray[np.int8],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    h: int,
    inside: dict[float, list[int]],
) -> None:
    """Intervals made at t for t+1..t+H in the test part, where the whole span t..t+H is labelled normal."""
    n = len(values)
    for t in range(skab.SKAB_TRAIN_ROWS, n - h):
        if anomaly[t : t + h + 1].any():
            continue
        target = values[t + 1 : t + h + 1]
        for j, level in enumerate(LEVELS):
            ok = (target >= lower[t, j]) & (target <= upper[t, j])
            inside[level][0] += int(ok.sum())
            inside[level][1] += ok.size
