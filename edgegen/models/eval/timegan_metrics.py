"""TimeGAN's evaluation protocol (Yoon et al., NeurIPS 2019), re-implemented in TF2/Keras so that a generator's
"discriminative" and "predictive" scores on the Stocks set compare with the published tables (TimeGAN, TimeVAE,
Diffusion-TS), which all run the upstream TF1 scripts (github.com/jsyoon0823/TimeGAN, metrics/*.py).

Kept from upstream: the loader (reverse rows, per-column min-max over the whole series with its 1e-7,
windows ``range(len - seq_len)``, i.e. one fewer than fit, shuffled); post-hoc GRU width ``int(dim / 2)``;
discriminator = GRU last state -> Dense(1) logit, sigmoid cross-entropy real=1 + synthetic=0, 80/20 split of each
set, accuracy at 0.5, score ``|acc - 0.5|``; predictor = GRU on the first ``dim - 1`` features of steps 0..T-2 ->
Dense(1) + sigmoid on every step, L1 loss against the last feature of steps 1..T-1, trained on synthetic, MAE on
all real; Adam at the TF1 defaults (lr 1e-3, betas 0.9/0.999, epsilon 1e-8); each step draws ``batch`` windows
without replacement.
The GRU is Keras' with TF1 ``GRUCell`` semantics (reset gate before the matmul, gate biases start at 1.0).
TensorFlow is imported on first use only: the runtime package must import without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.errors import DataError, EvaluationError
from edgegen.models.train import require_tensorflow

Windows = npt.NDArray[np.float32]
SCALE_EPS = 1e-7  # upstream MinMaxScaler adds this to the range, so a column's max maps to just under 1
TRAIN_RATE = 0.8  # upstream utils.train_test_divide


@dataclass(frozen=True)
class MinMax:
    """Per-column min and max of the whole (unwindowed) series: maps generated windows back to prices, volume."""

    min: tuple[float, ...]
    max: tuple[float, ...]

    def scale(self, x: npt.ArrayLike) -> Windows:
        lo, span = np.asarray(self.min), np.asarray(self.max) - np.asarray(self.min)
        scaled: Windows = ((np.asarray(x, dtype=np.float64) - lo) / (span + SCALE_EPS)).astype(np.float32)
        return scaled

    def unscale(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        lo, span = np.asarray(self.min), np.asarray(self.max) - np.asarray(self.min)
        values: npt.NDArray[np.float64] = np.asarray(x, dtype=np.float64) * (span + SCALE_EPS) + lo
        return values


@dataclass(frozen=True)
class TimeGanScores:
    """Per-run scores; papers print mean ± 95% t-interval half-width over 5 runs (Diffusion-TS display_scores)."""

    discriminative: tuple[float, ...]
    predictive: tuple[float, ...]

    @property
    def discriminative_mean(self) -> float:
        return float(np.mean(self.discriminative))

    @property
    def discriminative_std(self) -> float:
        return _std(self.discriminative)

    @property
    def discriminative_ci95(self) -> float:
        return _ci95(self.discriminative)

    @property
    def predictive_mean(self) -> float:
        return float(np.mean(self.predictive))

    @property
    def predictive_std(self) -> float:
        return _std(self.predictive)

    @property
    def predictive_ci95(self) -> float:
        return _ci95(self.predictive)


def _std(x: tuple[float, ...]) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def _ci95(x: tuple[float, ...]) -> float:
    if len(x) < 2:
        return 0.0
    from scipy import stats

    return float(stats.sem(x) * stats.t.ppf(0.975, len(x) - 1))


def stock_series(path: Path) -> tuple[npt.NDArray[np.float32], MinMax]:
    """The whole series in upstream's orientation, min-max scaled to [0, 1] per column, and the scaler."""
    try:
        raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read as a numeric CSV with one header row: {e}") from e
    # upstream's "flip to make chronological" reverses this file, which is already oldest first (2004 ~$50 at
    # the top): windows run backwards in time. Kept: the published scores were measured on exactly these windows.
    series = raw[::-1]
    scaler = MinMax(tuple(map(float, series.min(0))), tuple(map(float, series.max(0))))
    return scaler.scale(series), scaler


def load_stock(path: Path, seq_len: int = 24, seed: int = 0) -> tuple[Windows, MinMax]:
    """Upstream real_data_loading('stock'): shuffled overlapping windows in [0, 1], plus the scaler."""
    scaled, scaler = stock_series(path)
    if seq_len < 2 or len(scaled) <= seq_len:
        raise DataError(f"{path}: {len(scaled)} rows cannot give windows of {seq_len}")
    windows = np.lib.stride_tricks.sliding_window_view(scaled, seq_len, axis=0).transpose(0, 2, 1)
    windows = windows[: len(scaled) - seq_len]  # upstream's range(0, len - seq_len) drops the last full window
    order = np.random.default_rng(seed).permutation(len(windows))
    return np.ascontiguousarray(windows[order], dtype=np.float32), scaler


def split_halves(real: Windows, seed: int = 0) -> tuple[Windows, Windows]:
    """Two disjoint random halves of the windows (not of time: neighbours overlap), for real-vs-real baselines."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return real[order[:half]], real[order[half:]]


def _check(real: Windows, synthetic: Windows) -> tuple[int, int]:
    for name, x in (("real", real), ("synthetic", synthetic)):
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise EvaluationError(f"{name} must be an array of windows (n, seq_len, dim), got {np.shape(x)}")
        if len(x) < 2 or x.shape[1] < 2 or x.shape[2] < 2:
            raise EvaluationError(f"{name}: need >= 2 windows of >= 2 steps and >= 2 features, got {x.shape}")
        if not np.isfinite(x).all():
            raise EvaluationError(f"{name} holds non-finite values")
    if real.shape[1:] != synthetic.shape[1:]:
        raise EvaluationError(f"window shapes differ: real {real.shape[1:]}, synthetic {synthetic.shape[1:]}")
    return int(real.shape[1]), int(real.shape[2])


def _seed_everything(seed: int) -> Any:
    tf = require_tensorflow()
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return tf


def _gru(keras: Any, units: int, *, sequences: bool) -> Any:
    """A Keras GRU with TF1 GRUCell semantics, the cell upstream used."""

    def bias(shape: Any, dtype: Any = None) -> Any:
        b = np.zeros(shape, dtype=np.float32)
        b[: 2 * units] = 1.0  # update and reset gates start open, candidate bias at 0
        return keras.ops.convert_to_tensor(b, dtype=dtype)

    return keras.layers.GRU(
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        reset_after=False,
        recurrent_initializer="glorot_uniform",
        bias_initializer=bias,
        return_sequences=sequences,
    )


def _adam(keras: Any, variables: Any) -> Any:
    opt = keras.optimizers.Adam(
        learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8
    )  # tf.compat.v1 defaults
    opt.build(variables)  # create slots outside tf.function
    return opt


def _draw(rng: np.random.Generator, n: int, batch: int) -> npt.NDArray[np.int32]:
    return rng.permutation(n)[:batch].astype(np.int32)  # upstream: np.random.permutation(n)[:batch_size]


def _split(x: Windows, rng: np.random.Generator) -> tuple[Windows, Windows]:
    order = rng.permutation(len(x))
    cut = int(len(x) * TRAIN_RATE)
    return x[order[:cut]], x[order[cut:]]


def discriminative_score(
    real: Windows, synthetic: Windows, *, iterations: int = 2000, batch: int = 128, seed: int = 0
) -> float:
    """|test accuracy - 0.5| of a post-hoc GRU classifier trained to tell real from synthetic (0 is best)."""
    seq_len, dim = _check(real, synthetic)
    tf = _seed_everything(seed)
    keras = tf.keras
    rng = np.random.default_rng(seed)
    real_train, real_test = _split(real, rng)
    fake_train, fake_test = _split(synthetic, rng)

    x = keras.Input(shape=(seq_len, dim))
    model = keras.Model(x, keras.layers.Dense(1)(_gru(keras, dim // 2, sequences=False)(x)))  # logits
    opt = _adam(keras, model.trainable_variables)
    xr, xf = tf.constant(real_train), tf.constant(fake_train)

    @tf.function  # type: ignore[untyped-decorator]
    def step(ir: Any, jf: Any) -> Any:
        with tf.GradientTape() as tape:
            lr, lf = model(tf.gather(xr, ir), training=True), model(tf.gather(xf, jf), training=True)
            loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(lr), logits=lr)
            ) + tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(lf), logits=lf))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for _ in range(iterations):
        step(_draw(rng, len(real_train), batch), _draw(rng, len(fake_train), batch))
    real_hit = np.asarray(model(tf.constant(real_test), training=False)).ravel() > 0.0  # sigmoid > 0.5
    fake_hit = np.asarray(model(tf.constant(fake_test), training=False)).ravel() <= 0.0
    accuracy = (real_hit.sum() + fake_hit.sum()) / (len(real_hit) + len(fake_hit))
    return float(abs(0.5 - accuracy))


def predictive_score(
    real: Windows, synthetic: Windows, *, iterations: int = 5000, batch: int = 128, seed: int = 0
) -> float:
    """MAE on all real windows of a post-hoc GRU trained on synthetic to predict the next step's last feature."""
    seq_len, dim = _check(real, synthetic)
    tf = _seed_everything(seed)
    keras = tf.keras
    rng = np.random.default_rng(seed)

    x = keras.Input(shape=(seq_len - 1, dim - 1))
    h = _gru(keras, dim // 2, sequences=True)(x)
    model = keras.Model(x, keras.layers.Dense(1, activation="sigmoid")(h))
    opt = _adam(keras, model.trainable_variables)
    xs, ys = tf.constant(synthetic[:, :-1, : dim - 1]), tf.constant(synthetic[:, 1:, dim - 1 :])

    @tf.function  # type: ignore[untyped-decorator]
    def step(i: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(tf.gather(ys, i) - model(tf.gather(xs, i), training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for _ in range(iterations):
        step(_draw(rng, len(synthetic), batch))
    pred = np.asarray(model(tf.constant(real[:, :-1, : dim - 1]), training=False))
    # upstream averages each window's MAE over windows; with equal lengths that is the mean over everything
    return float(np.mean(np.abs(pred - real[:, 1:, dim - 1 :])))


def real_ceiling(
    real: Windows, *, disjoint: bool = True, iterations: int = 5000, batch: int = 128, seed: int = 0
) -> float:
    """The predictive score a perfect generator would get: real windows stand in for synthetic.

    disjoint=True trains on one random half of the windows and tests on the other (an honest train/test split);
    disjoint=False trains and tests on all of real, i.e. predictive_score(real, real), which is how the "Original"
    row of the TimeGAN / Diffusion-TS tables is computed (Stocks: 0.036 +- 0.001).
    """
    if not disjoint:
        return predictive_score(real, real, iterations=iterations, batch=batch, seed=seed)
    train, test = split_halves(real, seed)
    return predictive_score(test, train, iterations=iterations, batch=batch, seed=seed)


def evaluate(
    real: Windows,
    generate: Callable[[int, int], Windows],
    runs: int = 5,
    *,
    disc_iterations: int = 2000,
    pred_iterations: int = 5000,
    batch: int = 128,
    seed: int = 0,
    regenerate: bool = True,
) -> TimeGanScores:
    """Both scores over ``runs`` seeds. generate(n, seed) returns n windows shaped like real.

    regenerate=True draws a fresh synthetic set per run (generator and metric variance); False draws one set and
    rescores it, as upstream main_timegan.py (and Diffusion-TS) do.
    """
    if runs < 1:
        raise EvaluationError(f"runs must be >= 1, got {runs}")
    disc: list[float] = []
    pred: list[float] = []
    synthetic = np.asarray(generate(len(real), seed), dtype=np.float32)
    for r in range(runs):
        if regenerate and r:
            synthetic = np.asarray(generate(len(real), seed + r), dtype=np.float32)
        disc.append(discriminative_score(real, synthetic, iterations=disc_iterations, batch=batch, seed=seed + r))
        pred.append(predictive_score(real, synthetic, iterations=pred_iterations, batch=batch, seed=seed + r))
    return TimeGanScores(tuple(disc), tuple(pred))
