"""Tennessee Eastman (Braatz data set) evaluation of the gateway's generative model.

- ``detection``: the anomaly detector fitted on the normal training run only (d00.dat), then every test run
  scored from its first row. Per fault the detection rate (flagged share of rows >= 160, the faulty part) and
  the false-alarm rate before the fault, plus the FAR on the all-normal d00_te. The flag is calibrated to
  ``params.alpha`` on held-back d00.dat rows; the measured FAR on unseen normal data is reported beside it,
  because that is what the calibration promises and what a user sees. A second, oracle column gives the
  detection rate at the threshold that makes d00_te's FAR exactly alpha, the convention of the TEP literature,
  so the ranking power can be read apart from the calibration.
- ``tstr``: train-on-synthetic, test-on-real. One class-conditional generative model learns all 22 training
  files; for each fault it samples as many rows as the real file holds. The same fault classifier is trained on
  real normal + synthetic faults (TSTR) and on real normal + real faults (TRTR) and both are tested on the real
  test runs; TSTR/TRTR says how much of the faults' distinguishing structure the generator reproduced.

Classifier (identical for both arms): windows of ``window`` consecutive rows, standardized with d00.dat's
per-channel mean and scale (known to both arms, so neither sees test statistics), flattened, into
Dense(128, relu) - Dense(64, relu) - softmax, Adam 1e-3, batch 64, fixed epochs and seed. A window is labelled
with the class of its file; test windows end at rows >= 160 of dNN_te (800 per fault, the first ones reach back
``window - 1`` rows before the fault) and at every row of d00_te with a full window.

TensorFlow is imported only inside the functions that train.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgegen.models.data import tep
from edgegen.models.errors import EvaluationError
from edgegen.models.generative.detector import Detector, DetectorParams
from edgegen.models.generative.spec import NORMAL, GenSpec, Scaler

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
FAULTS = tuple(range(1, 22))
START = tep.FAULT_START_TEST  # first faulty test row
DEFAULT_PARAMS = DetectorParams()


def _name(fault: int) -> str:
    return f"IDV({fault})" if fault else NORMAL


def _check(faults: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(f) for f in faults)
    if not out or len(set(out)) != len(out) or not all(1 <= f <= 21 for f in out):
        raise EvaluationError(f"faults must be distinct values in 1..21, got {list(faults)}")
    return out


# -- detection --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultDetection:
    fault: int
    name: str
    detection_rate: float  # flagged share of rows >= 160
    far_before: float  # flagged share of rows < 160 (normal operation, same run)
    delay: int | None  # rows from 160 to the first flag at or after it; None: never flagged
    detection_at_oracle: float  # detection rate at the threshold giving FAR = alpha on d00_te


@dataclass(frozen=True)
class TepDetection:
    alpha: float  # the configured false-alarm rate the flag is calibrated to
    far_normal_test: float  # measured: flagged share of d00_te
    far_pooled: float  # measured: d00_te plus rows < 160 of every scored fault run
    oracle_level: float  # smoothed-score level exceeded by alpha of d00_te
    tail_level: float  # the calibrated flag level
    faults: tuple[FaultDetection, ...]
    test_rows: int  # faulty rows per fault run
    fit_s: float
    score_s: float
    params: DetectorParams


def detection(
    data_dir: Path, params: DetectorParams = DEFAULT_PARAMS, *, faults: Sequence[int] = FAULTS
) -> TepDetection:
    """Fit on d00.dat (normal), score d00_te and each dNN_te in ``faults`` from its first row."""
    chosen = _check(faults)
    started = time.perf_counter()
    det = Detector.fit(tep.run(data_dir, 0, False).values, params, tep.CHANNELS)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    normal = det.score(tep.run(data_dir, 0, True).values)
    scored = [(f, det.score(tep.run(data_dir, f, True).values)) for f in chosen]
    score_s = time.perf_counter() - started
    oracle = float(np.quantile(normal.smoothed, 1 - params.alpha))
    rows = []
    before = [normal.flag]
    test_rows = 0
    for f, s in scored:
        after = s.flag[START:]
        test_rows = len(after)
        hits = np.flatnonzero(after)
        rows.append(
            FaultDetection(
                fault=f,
                name=_name(f),
                detection_rate=float(after.mean()),
                far_before=float(s.flag[:START].mean()),
                delay=int(hits[0]) if len(hits) else None,
                detection_at_oracle=float(np.mean(s.smoothed[START:] > oracle)),
            )
        )
        before.append(s.flag[:START])
    return TepDetection(
        alpha=params.alpha,
        far_normal_test=float(normal.flag.mean()),
        far_pooled=float(np.concatenate(before).mean()),
        oracle_level=oracle,
        tail_level=float(det.tail.level),
        faults=tuple(rows),
        test_rows=test_rows,
        fit_s=fit_s,
        score_s=score_s,
        params=params,
    )


# -- train on synthetic, test on real ---------------------------------------------------------------------


@dataclass(frozen=True)
class FaultTstr:
    fault: int
    name: str
    recall_tstr: float
    recall_trtr: float
    test_rows: int
    synthetic_rows: int


@dataclass(frozen=True)
class TepTstr:
    classes: tuple[str, ...]
    faults: tuple[FaultTstr, ...]
    normal_recall_tstr: float
    normal_recall_trtr: float
    accuracy_tstr: float
    accuracy_trtr: float
    macro_f1_tstr: float
    macro_f1_trtr: float
    ratio_accuracy: float  # TSTR / TRTR
    ratio_macro_f1: float
    window: int
    epochs: int
    steps: int
    seed: int
    gen_train_s: float  # the conditional generative model
    sample_s: float
    classify_s: float  # both classifiers, train and test


def tstr(
    data_dir: Path,
    *,
    steps: int = 600,
    seed: int = 0,
    windows: int = 8,
    epochs: int = 30,
    series: int = 4,
    faults: Sequence[int] = FAULTS,
    context: int = 16,
    width: int = 64,
) -> TepTstr:
    """TSTR vs TRTR on the real test runs. ``series`` synthetic runs per fault share the real file's row count
    (480 / 4 = 120 rows each by default); they start from the class's start distribution (empty context), as
    the real training files start just after the fault. ``windows`` is the classifier's window length."""
    from edgegen.models.generative.model import train
    from edgegen.models.generative.sample import sample

    chosen = _check(faults)
    if windows < 1 or series < 1 or epochs < 1:
        raise EvaluationError("windows, series and epochs must be positive")
    classes = (NORMAL, *(_name(f) for f in chosen))
    real = {k: [tep.run(data_dir, f, False).values] for k, f in enumerate((0, *chosen))}
    started = time.perf_counter()
    spec = GenSpec(tep.CHANNELS, classes, context=context, width=width)
    model = train(
        spec, [(v, np.full(len(v), k, dtype=np.int64)) for k, (v,) in real.items()], steps=steps, seed=seed
    )
    trained = time.perf_counter()
    synthetic = {  # each fault's real row count, split over ``series`` runs
        k: list(sample(model, classes[k], series, len(real[k][0]) // series, seed=seed + 1000 + k))
        for k in range(1, len(classes))
    }
    sampled = time.perf_counter()
    scaler = Scaler.fit(real[0][0])
    test_x, test_y = _test_windows(data_dir, chosen, scaler, windows)
    on_synthetic, on_real = (
        _Arm.of(test_y, _classify_runs(runs, scaler, windows, test_x, len(classes), epochs, seed), len(classes))
        for runs in ({0: real[0], **synthetic}, real)
    )
    rows = tuple(
        FaultTstr(
            fault=f,
            name=classes[k],
            recall_tstr=on_synthetic.recalls[k],
            recall_trtr=on_real.recalls[k],
            test_rows=int(np.sum(test_y == k)),
            synthetic_rows=sum(len(r) for r in synthetic[k]),
        )
        for k, f in enumerate(chosen, start=1)
    )
    return TepTstr(
        classes=classes,
        faults=rows,
        normal_recall_tstr=on_synthetic.recalls[0],
        normal_recall_trtr=on_real.recalls[0],
        accuracy_tstr=on_synthetic.accuracy,
        accuracy_trtr=on_real.accuracy,
        macro_f1_tstr=on_synthetic.macro_f1,
        macro_f1_trtr=on_real.macro_f1,
        ratio_accuracy=on_synthetic.accuracy / on_real.accuracy if on_real.accuracy else float("nan"),
        ratio_macro_f1=on_synthetic.macro_f1 / on_real.macro_f1 if on_real.macro_f1 else float("nan"),
        window=windows,
        epochs=epochs,
        steps=steps,
        seed=seed,
        gen_train_s=trained - started,
        sample_s=sampled - trained,
        classify_s=time.perf_counter() - sampled,
    )


@dataclass(frozen=True)
class _Arm:
    """One arm's predictions on the real test windows, scored."""

    recalls: list[float]
    accuracy: float
    macro_f1: float

    @classmethod
    def of(cls, truth: I64, pred: I64, classes: int) -> _Arm:
        return cls(_recalls(truth, pred, classes), float(np.mean(pred == truth)), _macro_f1(truth, pred, classes))


def _classify_runs(
    runs: dict[int, list[F64]], scaler: Scaler, w: int, test_x: F64, classes: int, epochs: int, seed: int
) -> I64:
    """Train the classifier on the windows of each class's runs; predict the test windows."""
    parts = [_windows(class_runs, k, scaler, w) for k, class_runs in runs.items()]
    x, y = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
    return _classify(x, y, test_x, classes, epochs, seed)


def _windows(runs: Sequence[F64], label: int, scaler: Scaler, w: int, first_end: int = 0) -> tuple[F64, I64]:
    """Every window of ``w`` rows inside one run, ending at rows >= ``first_end``, flattened; windows never
    straddle two runs."""
    xs = []
    for run in runs:
        z = scaler.forward(run)
        ends = np.arange(max(w - 1, first_end), len(z))
        if len(ends):
            xs.append(np.stack([z[e - w + 1 : e + 1].ravel() for e in ends]))
    x = np.concatenate(xs) if xs else np.zeros((0, w * len(scaler.centre)))
    return x, np.full(len(x), label, dtype=np.int64)


def _test_windows(data_dir: Path, faults: tuple[int, ...], scaler: Scaler, w: int) -> tuple[F64, I64]:
    parts = [_windows([tep.run(data_dir, 0, True).values], 0, scaler, w)]
    for k, f in enumerate(faults, start=1):
        parts.append(_windows([tep.run(data_dir, f, True).values], k, scaler, w, first_end=START))
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _classify(x: F64, y: I64, test_x: F64, classes: int, epochs: int, seed: int) -> I64:
    """The fault classifier both arms share; returns predicted classes of ``test_x``."""
    from edgegen.models.train import require_tensorflow

    tf = require_tensorflow()
    keras = tf.keras
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    order = np.random.default_rng(seed).permutation(len(x))  # fixed order; keras shuffles with its own seed
    model.fit(x[order].astype(np.float32), y[order], epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    proba = model.predict(test_x.astype(np.float32), batch_size=1024, verbose=0)
    return np.asarray(np.argmax(proba, axis=1), dtype=np.int64)


def _recalls(truth: I64, pred: I64, classes: int) -> list[float]:
    return [float(np.mean(pred[truth == k] == k)) if np.any(truth == k) else float("nan") for k in range(classes)]


def _macro_f1(truth: I64, pred: I64, classes: int) -> float:
    """Mean over classes present in ``truth`` of 2·TP / (2·TP + FP + FN)."""
    scores = []
    for k in range(classes):
        if not np.any(truth == k):
            continue
        tp = float(np.sum((pred == k) & (truth == k)))
        fp = float(np.sum((pred == k) & (truth != k)))
        fn = float(np.sum((pred != k) & (truth == k)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))
