"""SKAB leaderboard scoring: point-wise outlier metrics and NAB changepoint scores, as upstream computes them.

Protocol read from upstream SKAB (github waico/SKAB @ b2c0d46: README "Proposed Leaderboard", core/metrics.py
`chp_score`, notebooks/*.ipynb) and its scoring library tsad (github waico/tsad, tsad/utils/evaluating/):

- Outliers: confusion counts pooled over the test part (rows 400..end) of all 34 files, then
  F1 = TP/(TP+(FP+FN)/2), FAR = 100*FP/(FP+TN), MAR = 100*FN/(FN+TP). Upstream rounds to 2 decimals; we do not.
- Changepoints (NAB as in tsad, leaderboard call `window_width="60s", anomaly_window_destination="righter"`):
  each true changepoint t opens a closed window [t, t+60 s]; when windows overlap the later one starts where the
  earlier one ends ("cut right window"). The first predicted changepoint inside a window is a TP scored by tsad's
  scaled sigmoid (A_tp at the window's left edge falling to A_fp at its right edge, sampled on a 1000-point grid);
  later ones in the same window are ignored; an empty window costs A_fn; each prediction outside every window costs
  A_fp. Profiles (A_tp, A_fp, A_fn): standard (1, -0.11, -1), low FP (1, -0.22, -1), low FN (1, -0.11, -2).
  Raw scores are summed over files and normalised as 100*(S - S_null)/(S_perfect - S_null) with
  S_null = windows*A_fn and S_perfect = windows*A_tp, so the null detector scores 0 and the perfect one 100.
- Upstream's changepoint predictions are the edges of its outlier predictions (`outlier_edges`: |diff| with the
  first row copied; the Isolation forest notebook first holds each flag for 30 rows). So the CPD leaderboard *is*
  reproducible from reference_predictions/ (the same runs as the outlier numbers); `reference_changepoint_methods`
  reproduces every published CPD row, missed-changepoint and FP counts included (T-squared's counts as its
  notebook prints them, 84/203; the README table's 70/106 are stale).

Alignment of windowed methods (fewer rows than the test part): upstream pairs labels and predictions by datetime
through pandas index alignment, which drops rows missing on either side (an inner join); that reproduces
Vanilla_LSTM. MSCRED's notebook additionally slices its labels with a stale loop variable,
`y_test[-len(X_test_)-1:-1]` where X_test_ is the *last* file's windowed input (the CSV's last file, in upstream's
os.walk order: valve2/2, 690 rows): every file is scored on test rows [n-691, n-2] only, and only the changepoints
there get windows. `reference_methods` reproduces
that quirk by default (upstream_quirks=True) because the published MSCRED numbers depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from edgegen.models.data.series import Series
from edgegen.models.data.skab import SKAB_TRAIN_ROWS, experiments
from edgegen.models.errors import EvaluationError

NAB_WINDOW_US = 60_000_000  # the leaderboard's 60 s window after each true changepoint
NAB_PROFILES: dict[str, tuple[float, float, float]] = {  # (A_tp, A_fp, A_fn); tsad's A_tn is never used
    "standard": (1.0, -0.11, -1.0),
    "low_fp": (1.0, -0.22, -1.0),
    "low_fn": (1.0, -0.11, -2.0),
}
_SIGMOID_POINTS = 1000  # tsad's `detalization`: the sigmoid is looked up on this grid, not evaluated exactly
_QUIRK_METHOD = "MSCRED"
_EDGE_HOLD = {"Isolation_Forest": 30}  # upstream notebooks' changepoint post-processing, per method

Labels = npt.ArrayLike | pd.Series


@dataclass(frozen=True)
class OutlierScores:
    f1: float
    far: float  # %
    mar: float  # %
    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True)
class NabScores:
    standard: float
    low_fp: float
    low_fn: float
    missed: int  # windows with no predicted changepoint
    false_alarms: int  # predicted changepoints outside every window


def _flags(values: Labels, what: str, name: str) -> npt.NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EvaluationError(f"{name}: {what} must be 1-D, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.bool_, copy=False)
    if not np.issubdtype(arr.dtype, np.number):
        raise EvaluationError(f"{name}: {what} must be 0/1, got dtype {arr.dtype}")
    ok = (arr == 0) | (arr == 1)
    if not bool(np.all(ok)):
        bad = arr[~ok][0]
        raise EvaluationError(f"{name}: {what} must be 0/1, found {bad!r}")
    out: npt.NDArray[np.bool_] = arr == 1
    return out


def _names(count: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"file #{i}" for i in range(count)]
    if len(names) != count:
        raise EvaluationError(f"{len(names)} names for {count} files")
    return list(names)


def _rate(num: int, den: int) -> float:
    return 100.0 * num / den if den else 0.0


def outlier_scores(
    true: Sequence[Labels], predicted: Sequence[Labels], names: Sequence[str] | None = None
) -> OutlierScores:
    """Point-wise F1/FAR/MAR pooled over files. Pandas Series pairs must share their index: align them first."""
    if len(true) != len(predicted):
        raise EvaluationError(f"{len(true)} label arrays for {len(predicted)} prediction arrays")
    tp = fp = fn = tn = 0
    for name, t_in, p_in in zip(_names(len(true), names), true, predicted, strict=True):
        if isinstance(t_in, pd.Series) and isinstance(p_in, pd.Series) and not t_in.index.equals(p_in.index):
            raise EvaluationError(f"{name}: labels and predictions have different indexes")
        t, p = _flags(t_in, "labels", name), _flags(p_in, "predictions", name)
        if t.shape != p.shape:
            raise EvaluationError(f"{name}: {t.size} labels for {p.size} predictions")
        tp += int(np.sum(t & p))
        fp += int(np.sum(~t & p))
        fn += int(np.sum(t & ~p))
        tn += int(np.sum(~t & ~p))
    f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0
    return OutlierScores(f1, _rate(fp, fp + tn), _rate(fn, fn + tp), tp, fp, fn, tn)


def outlier_edges(flags: Labels, hold: int = 1) -> npt.NDArray[np.int8]:
    """Predicted changepoints from outlier flags, as upstream: |diff| with the first row copied.

    So a flagged segment yields its first flagged row (rising edge) and the first unflagged row after it (falling
    edge, which marks the end of a collective anomaly the way SKAB's labels do), and a series that starts flagged
    gets a changepoint on its first row. hold=k first stretches the flags by a trailing k-row max, which merges
    segments less than k rows apart (upstream's Isolation forest notebook used k=30); as with pandas'
    `rolling(k).max().fillna(0)`, rows 1..k-1 then count as unflagged, and row 0 keeps its raw flag.
    """
    if hold < 1:
        raise EvaluationError(f"outlier_edges: hold must be >= 1, got {hold}")
    f = _flags(flags, "flags", "outlier_edges").astype(np.int8)
    held = f
    if hold > 1:
        held = np.zeros_like(f)
        if f.size >= hold:
            held[hold - 1 :] = np.lib.stride_tricks.sliding_window_view(f, hold).max(axis=1)
    out = np.zeros_like(f)
    if f.size:
        out[0] = f[0]
        out[1:] = np.abs(np.diff(held))
    return out


def changepoint_times(
    flags: Labels, timestamps_us: npt.ArrayLike, name: str = "changepoint_times"
) -> npt.NDArray[np.int64]:
    """The timestamps of the rows flagged 1 (true changepoint labels -> the form `nab_scores` takes)."""
    f = _flags(flags, "changepoint flags", name)
    ts = np.asarray(timestamps_us, dtype=np.int64)
    if ts.shape != f.shape:
        raise EvaluationError(f"{name}: {f.size} flags for {ts.size} timestamps")
    return ts[f]


def _windows(cps: npt.NDArray[np.int64], width_us: int) -> npt.NDArray[np.int64]:
    """Closed [cp, cp+width] windows; an overlapping later window starts at the earlier one's end (tsad's
    "cut right window"), so neighbouring windows may share one boundary instant."""
    win = np.stack([cps, cps + width_us], axis=1) if cps.size else np.zeros((0, 2), np.int64)
    for i in range(len(win) - 1):
        win[i + 1, 0] = max(win[i, 1], win[i + 1, 0])
    return win


def _sigmoid(position: float, a_tp: float, a_fp: float) -> float:
    """tsad's scaled sigmoid at a relative position in the window (0 = left edge -> A_tp, 1 -> A_fp)."""
    index = min(int(position * _SIGMOID_POINTS), _SIGMOID_POINTS - 1)
    x = np.linspace(-np.pi / 2, np.pi / 2, _SIGMOID_POINTS)[index]
    half = (a_tp - a_fp) / 2
    return float(half * -np.tanh(x) / np.tanh(np.pi / 2) + half + a_fp)


def nab_scores(
    true_changepoints_us: Sequence[npt.ArrayLike],
    predicted: Sequence[Labels],
    timestamps_us: Sequence[npt.ArrayLike],
    *,
    window_us: int = NAB_WINDOW_US,
    names: Sequence[str] | None = None,
) -> NabScores:
    """NAB scores (standard, low FP, low FN) over files: true changepoint instants, predicted 0/1 changepoint
    flags and their timestamps (µs) per file. Use `outlier_edges` to turn outlier flags into changepoints."""
    if not len(true_changepoints_us) == len(predicted) == len(timestamps_us):
        raise EvaluationError(
            f"{len(true_changepoints_us)} changepoint lists, {len(predicted)} predictions, "
            f"{len(timestamps_us)} timestamp arrays"
        )
    if window_us <= 0:
        raise EvaluationError(f"window must be positive, got {window_us} µs")
    raw = np.zeros(len(NAB_PROFILES))
    coef = np.array(list(NAB_PROFILES.values()))  # (profile, [A_tp, A_fp, A_fn])
    n_windows = missed = false_alarms = 0
    for name, cps_in, pred_in, ts_in in zip(
        _names(len(predicted), names), true_changepoints_us, predicted, timestamps_us, strict=True
    ):
        cps = np.asarray(cps_in, dtype=np.int64).ravel()
        ts = np.asarray(ts_in, dtype=np.int64)
        pred = _flags(pred_in, "predicted changepoints", name)
        if ts.shape != pred.shape:
            raise EvaluationError(f"{name}: {pred.size} predictions for {ts.size} timestamps")
        if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
            raise EvaluationError(f"{name}: timestamps must increase strictly")
        if cps.size > 1 and not bool(np.all(np.diff(cps) > 0)):
            raise EvaluationError(f"{name}: true changepoints must increase strictly")
        hits = ts[pred]
        inside = np.zeros(hits.size, dtype=np.bool_)
        for left, right in _windows(cps, window_us):
            in_win = (hits >= left) & (hits <= right)
            inside |= in_win
            if not in_win.any():
                missed += 1
                raw += coef[:, 2]
                continue
            position = float(hits[in_win][0] - left) / float(right - left)
            raw += [_sigmoid(position, a_tp, a_fp) for a_tp, a_fp, _ in coef]
        n_windows += len(cps)
        false_alarms += int(np.sum(~inside))
        raw += coef[:, 1] * float(np.sum(~inside))
    if n_windows == 0:
        raise EvaluationError("no true changepoints: NAB scores are undefined")
    null, perfect = n_windows * coef[:, 2], n_windows * coef[:, 0]
    norm = 100.0 * (raw - null) / (perfect - null)
    return NabScores(float(norm[0]), float(norm[1]), float(norm[2]), missed, false_alarms)


@dataclass(frozen=True)
class _Aligned:
    name: str
    label_ts: npt.NDArray[np.int64]  # the test rows upstream took labels for
    anomaly: npt.NDArray[np.int8]
    changepoint: npt.NDArray[np.int8]
    pred_ts: npt.NDArray[np.int64]  # the rows the method predicted
    pred: npt.NDArray[np.int8]


def _read_predictions(path: Path) -> list[tuple[str, npt.NDArray[np.int64], npt.NDArray[np.int8]]]:
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise EvaluationError(f"{path}: {exc}") from exc
    missing = [c for c in ("file", "datetime", "pred_anomaly") if c not in frame.columns]
    if missing:
        raise EvaluationError(f"{path}: missing columns {missing}")
    out = []
    for file, group in frame.groupby("file", sort=False):
        where = f"{path.name}: {file}"
        try:
            stamps = pd.to_datetime(group["datetime"], format="%Y-%m-%d %H:%M:%S")
        except ValueError as exc:
            raise EvaluationError(f"{where}: {exc}") from exc
        ts = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64)
        pred = _flags(group["pred_anomaly"].to_numpy(), "pred_anomaly", where).astype(np.int8)
        out.append((str(file), ts, pred))
    return out


def _test_parts(data_dir: Path) -> dict[str, Series]:
    return {s.name + ".csv": s.slice(SKAB_TRAIN_ROWS, len(s)) for s in experiments(data_dir)}


def _align(tests: dict[str, Series], path: Path, upstream_quirks: bool) -> list[_Aligned]:
    files = _read_predictions(path)
    seen = [f for f, _, _ in files]
    if sorted(seen) != sorted(tests):
        absent, extra = sorted(set(tests) - set(seen)), sorted(set(seen) - set(tests))
        raise EvaluationError(f"{path.name}: files missing {absent}, unknown or repeated {extra}")
    stale_len = len(files[-1][1])  # len(X_test_) of the last file upstream's MSCRED loop saw
    out = []
    for file, ts, pred in files:
        test = tests[file]
        assert test.anomaly is not None and test.changepoint is not None  # experiments() loads labels
        where = f"{path.name}: {file}"
        if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
            raise EvaluationError(f"{where}: datetimes must increase strictly")
        pos = np.searchsorted(test.timestamps_us, ts)
        if bool(np.any(pos >= len(test))) or not np.array_equal(
            test.timestamps_us[np.minimum(pos, len(test) - 1)], ts
        ):
            raise EvaluationError(f"{where}: predictions at datetimes outside the file's test part")
        lo, hi = 0, len(test)
        if upstream_quirks and path.stem == _QUIRK_METHOD:
            lo, hi = max(0, len(test) - stale_len - 1), len(test) - 1
        out.append(
            _Aligned(
                file,
                test.timestamps_us[lo:hi],
                test.anomaly[lo:hi],
                test.changepoint[lo:hi],
                ts,
                pred,
            )
        )
    return out


def _prediction_files(data_dir: Path) -> list[Path]:
    folder = data_dir / "reference_predictions"
    paths = sorted(folder.glob("*.csv"))
    if not paths:
        raise EvaluationError(f"{folder}: no reference prediction CSVs")
    return paths


def reference_methods(data_dir: Path, *, upstream_quirks: bool = True) -> dict[str, OutlierScores]:
    """Outlier scores of every published method in data_dir/reference_predictions, keyed by CSV stem.

    Labels and predictions are joined on (file, datetime); rows a windowed method did not predict are left out,
    as upstream's pandas alignment does. upstream_quirks=False drops MSCRED's stale-slice quirk (module doc).
    """
    scores = {}
    tests = _test_parts(data_dir)
    for path in _prediction_files(data_dir):
        aligned = _align(tests, path, upstream_quirks)
        true, pred = [], []
        for a in aligned:
            _, li, pi = np.intersect1d(a.label_ts, a.pred_ts, assume_unique=True, return_indices=True)
            true.append(a.anomaly[li])
            pred.append(a.pred[pi])
        scores[path.stem] = outlier_scores(true, pred, [a.name for a in aligned])
    return scores


def reference_changepoint_methods(data_dir: Path, *, upstream_quirks: bool = True) -> dict[str, NabScores]:
    """NAB scores of every published method, from the edges of its outlier predictions (as upstream did).

    True changepoints are those in the rows upstream took labels for; predictions keep all their rows.
    """
    scores = {}
    tests = _test_parts(data_dir)
    for path in _prediction_files(data_dir):
        aligned = _align(tests, path, upstream_quirks)
        scores[path.stem] = nab_scores(
            [changepoint_times(a.changepoint, a.label_ts, a.name) for a in aligned],
            [outlier_edges(a.pred, _EDGE_HOLD.get(path.stem, 1)) for a in aligned],
            [a.pred_ts for a in aligned],
            names=[a.name for a in aligned],
        )
    return scores
