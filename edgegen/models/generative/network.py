"""The network (Keras) and its training: context, mask and class in; per channel and horizon step a Gaussian
mean and scale out. A linear autoregressive path plus a two-layer MLP correction; the scale has a floor so a
perfectly quiet training channel cannot make every later wiggle infinitely surprising.

Exported as float32 TFLite (docs/generative.md has the int8 measurement behind that choice).
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.generative.spec import GenSpec
from edgegen.models.generative.windows import Batch
from edgegen.models.train import require_tensorflow

tf = require_tensorflow()
keras = tf.keras
layers = keras.layers
Layer: Any = keras.layers.Layer

SCALE_FLOOR = 0.01  # in scaled units


def _fixed(name: str, matrix: npt.NDArray[np.float32]) -> Any:
    """A Dense layer with constant weights (spreading the per-step mask over the step's channels)."""
    layer = layers.Dense(matrix.shape[1], use_bias=False, trainable=False, name=name)
    layer.build((None, matrix.shape[0]))
    layer.set_weights([matrix])
    return layer


class Gain(Layer):  # type: ignore[misc]
    """Elementwise learned gain (one TFLite MUL): x * g, g starting at 0."""

    def build(self, input_shape: Any) -> None:
        self.gain = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="gain")

    def call(self, x: Any) -> Any:
        return x * self.gain


def build(spec: GenSpec) -> Any:
    """Mean = last observed value + a per-channel reversion toward the training mean + an MLP correction.
    The MLP and the scale head see the context only relative to its last value, so a level it never saw (a
    drifted or faulty state) shifts its forecast instead of throwing it off; the only level-dependent term is
    one gain per channel and step, which keeps sampled paths stationary without room to overfit (a dense
    context-to-output map has context x channels x horizon x channels weights: 430 k for Tennessee Eastman)."""
    c, span, h = len(spec.channels), spec.context, spec.horizon
    spread_mask = np.kron(np.eye(span), np.ones((1, c))).astype(np.float32)  # (span, span * c)

    ctx = keras.Input((span * c,), name="context")
    mask = keras.Input((span,), name="mask")
    cond = keras.Input((len(spec.classes),), name="condition")
    last_step = layers.Lambda(lambda t: t[:, (span - 1) * c :], name="last_step")(ctx)  # one STRIDED_SLICE
    last_tiled = layers.Concatenate(name="last_tiled")([last_step] * span) if span > 1 else last_step
    relative = layers.Multiply()([layers.Subtract()([ctx, last_tiled]), _fixed("mask_spread", spread_mask)(mask)])
    hidden = layers.Concatenate()([relative, mask, cond])
    hidden = layers.Dense(spec.width, activation="relu")(hidden)
    hidden = layers.Dense(spec.width, activation="relu")(hidden)
    last = layers.Concatenate(name="last_repeated")([last_step] * h) if h > 1 else last_step
    reversion = Gain(name="reversion")(last)  # per channel and step: pull toward the training mean (0)
    mean = layers.Add(name="mean")([last, reversion, layers.Dense(h * c)(hidden)])
    scale = layers.Activation("softplus")(layers.Dense(h * c)(hidden))
    scale = layers.Rescaling(1.0, offset=SCALE_FLOOR, name="scale")(scale)
    return keras.Model([ctx, mask, cond], [mean, scale], name="generative")


def fit(
    spec: GenSpec, batch: Batch, target: npt.NDArray[np.float32], *, steps: int, seed: int, lr: float = 3e-3
) -> tuple[Any, float]:
    """Adam on the Gaussian negative log-likelihood with a little weight decay, for a fixed number of steps
    (cost independent of data size), all inside one graph call; returns the model and its final loss."""
    keras.utils.set_random_seed(seed)
    model = build(spec)
    optimiser = keras.optimizers.AdamW(learning_rate=lr, weight_decay=1e-3)
    optimiser.build(model.trainable_variables)
    data = [tf.constant(a) for a in (batch.context, batch.mask, batch.condition, target)]
    n = len(batch)
    size = min(256, n)

    @tf.function(reduce_retracing=True)  # type: ignore[untyped-decorator]
    def train() -> Any:
        losses = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            idx = tf.random.stateless_uniform([size], seed=[seed, i], maxval=n, dtype=tf.int32)
            ctx, mask, cond, y = (tf.gather(a, idx) for a in data)
            with tf.GradientTape() as tape:
                mean, scale = model([ctx, mask, cond], training=True)
                z = (y - mean) / scale
                loss = tf.reduce_mean(tf.math.log(scale) + 0.5 * z * z)
            grads = tape.gradient(loss, model.trainable_variables)
            optimiser.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            losses = losses.write(i, loss)
        return losses.stack()

    losses = train().numpy()
    tail = losses[-max(1, steps // 10) :]
    return model, float(np.mean(tail)) if len(tail) else math.nan


def to_tflite(model: Any, representative: Batch | None = None) -> bytes:
    """float32, or int8 weights and activations (float32 in and out) calibrated on ``representative`` rows -
    the variant ``bench/generative_int8.py`` measures against float32."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        rows = representative

        def samples() -> Any:
            for i in range(len(rows)):
                yield {
                    "context": rows.context[i : i + 1],
                    "mask": rows.mask[i : i + 1],
                    "condition": rows.condition[i : i + 1],
                }

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
    with contextlib.redirect_stdout(io.StringIO()):
        return bytes(converter.convert())
